/*
 * ft_pool.c - AvgPool1D, MaxPool1D, GlobalAvgPool1D and Flatten on channels-last [T, C].
 *
 * Counts per call (o = t_out * c outputs, p = window size, n = t_in * c inputs):
 *   avgpool forward:  adds = o (p - 1); muls = o; divs = 1; bytes = 4 (o p + o)
 *   avgpool backward: macs = o p (dx += dy * (1/p), fused); divs = 1;
 *                     bytes = 4 (n + 3 o p)  (zero dx; dy, dx load + store per tap)
 *   maxpool forward:  cmps = o (p - 1); bytes = 4 (o p + o [+ o when indices are kept])
 *   maxpool backward: adds = o; bytes = 4 (n + 4 o)      (zero dx; idx, dy, dx load+store)
 *   gap forward:      adds = c (t - 1); muls = c; divs = 1; bytes = 4 (n + c)
 *   gap backward:     muls = c; divs = 1; bytes = 4 (c + n)
 *   flatten forward / backward: bytes = 4 * 2n
 */
#include "ft_internal.h"

FT_HOT void ft_avgpool1d_forward(const ft_pool_dims *d, const float *FT_RESTRICT x,
                                 float *FT_RESTRICT y, ft_op_counts *cnt)
{
    const int32_t c = d->c, p = d->size;
    const int64_t o = (int64_t)d->t_out * c;
    const float inv = 1.0f / (float)p;
    int32_t t, q, i;

    cnt->adds += o * (p - 1);
    cnt->muls += o;
    cnt->divs += 1;
    cnt->bytes_moved += 4 * (o * p + o);
    /* The window sum stays in a register: p loads and one store per output. */
    for (t = 0; t < d->t_out; ++t) {
        const float *xw = x + (int64_t)t * d->stride * c;
        float *yr = y + (int64_t)t * c;
        for (i = 0; i < c; ++i) {
            const float *xc = xw + i;
            float sum = *xc;
            for (q = 1; q < p; ++q) {
                xc += c;
                sum += *xc;
            }
            yr[i] = sum * inv;
        }
    }
}

FT_HOT void ft_avgpool1d_backward(const ft_pool_dims *d, const float *FT_RESTRICT dy,
                                  float *FT_RESTRICT dx, ft_op_counts *cnt)
{
    const int32_t c = d->c, p = d->size;
    const int64_t o = (int64_t)d->t_out * c, n = (int64_t)d->t_in * c;
    const float inv = 1.0f / (float)p;
    int64_t z;
    int32_t t, q, i;

    cnt->macs += o * p;
    cnt->divs += 1;
    cnt->bytes_moved += 4 * (n + 3 * o * p);
    for (z = 0; z < n; ++z) {
        dx[z] = 0.0f;
    }
    for (t = 0; t < d->t_out; ++t) {
        const float *dr = dy + (int64_t)t * c;
        float *dxw = dx + (int64_t)t * d->stride * c;
        for (q = 0; q < p; ++q) {
            float *xr = dxw + (int64_t)q * c;
            for (i = 0; i < c; ++i) {
                xr[i] += dr[i] * inv;
            }
        }
    }
}

void ft_maxpool1d_forward(const ft_pool_dims *d, const float *FT_RESTRICT x,
                          float *FT_RESTRICT y, int32_t *FT_RESTRICT idx, ft_op_counts *cnt)
{
    const int32_t c = d->c, p = d->size;
    const int64_t o = (int64_t)d->t_out * c;
    int32_t t, q, i;

    cnt->cmps += o * (p - 1);
    cnt->bytes_moved += 4 * (o * p + o + (idx != NULL ? o : 0));
    for (t = 0; t < d->t_out; ++t) {
        const int32_t base = t * d->stride * c;
        float *yr = y + (int64_t)t * c;
        for (i = 0; i < c; ++i) {
            float m = x[base + i];
            int32_t at = base + i;
            for (q = 1; q < p; ++q) {
                const int32_t k = base + q * c + i;
                const float v = x[k];
                /* The first maximum wins, as in PyTorch; a NaN propagates. */
                if (v > m || v != v) {
                    m = v;
                    at = k;
                }
            }
            yr[i] = m;
            if (idx != NULL) {
                idx[(int64_t)t * c + i] = at;
            }
        }
    }
}

void ft_maxpool1d_backward(const ft_pool_dims *d, const float *FT_RESTRICT dy,
                           const int32_t *FT_RESTRICT idx, float *FT_RESTRICT dx,
                           ft_op_counts *cnt)
{
    const int64_t o = (int64_t)d->t_out * d->c, n = (int64_t)d->t_in * d->c;
    int64_t z;

    cnt->adds += o;
    cnt->bytes_moved += 4 * (n + 4 * o);
    for (z = 0; z < n; ++z) {
        dx[z] = 0.0f;
    }
    for (z = 0; z < o; ++z) {
        dx[idx[z]] += dy[z];
    }
}

FT_HOT void ft_gap1d_forward(int32_t t, int32_t c, const float *FT_RESTRICT x,
                             float *FT_RESTRICT y, ft_op_counts *cnt)
{
    const float inv = 1.0f / (float)t;
    int32_t q, i;

    cnt->adds += (int64_t)c * (t - 1);
    cnt->muls += c;
    cnt->divs += 1;
    cnt->bytes_moved += 4 * ((int64_t)t * c + c);
    /* The channel sum stays in a register: t loads and one store per channel. */
    for (i = 0; i < c; ++i) {
        const float *xc = x + i;
        float sum = xc[0];
        for (q = 1; q < t; ++q) {
            xc += c;
            sum += *xc;
        }
        y[i] = sum * inv;
    }
}

FT_HOT void ft_gap1d_backward(int32_t t, int32_t c, const float *FT_RESTRICT dy,
                              float *FT_RESTRICT dx, ft_op_counts *cnt)
{
    const float inv = 1.0f / (float)t;
    int32_t q, i;

    cnt->muls += c;
    cnt->divs += 1;
    cnt->bytes_moved += 4 * ((int64_t)c + (int64_t)t * c);
    /* Each channel's gradient is computed once and stored to all t steps. */
    for (i = 0; i < c; ++i) {
        const float g = dy[i] * inv;
        float *xc = dx + i;
        for (q = 0; q < t; ++q, xc += c) {
            *xc = g;
        }
    }
}

void ft_flatten_forward(int32_t t, int32_t c, const float *FT_RESTRICT x,
                        float *FT_RESTRICT y, ft_op_counts *cnt)
{
    int32_t q, i;
    cnt->bytes_moved += 4 * 2 * (int64_t)t * c;
    for (q = 0; q < t; ++q) {
        for (i = 0; i < c; ++i) {
            y[(int64_t)i * t + q] = x[(int64_t)q * c + i];
        }
    }
}

void ft_flatten_backward(int32_t t, int32_t c, const float *FT_RESTRICT dy,
                         float *FT_RESTRICT dx, ft_op_counts *cnt)
{
    int32_t q, i;
    cnt->bytes_moved += 4 * 2 * (int64_t)t * c;
    for (q = 0; q < t; ++q) {
        for (i = 0; i < c; ++i) {
            dx[(int64_t)q * c + i] = dy[(int64_t)i * t + q];
        }
    }
}
