/*
 * ft_conv1d.c - Conv1D and Dense kernels (a dense layer is a conv with K = 1, T = 1).
 *
 * Layout: x [t_pad, c], w [k, c, f], y [t_out, f]; the window of output step t is
 * x + t * s * c, k * c contiguous floats, and window element j multiplies weight row j.
 * With GCC (vector extensions) the main loops work on register tiles of 4 output rows (or
 * 4 window elements) by 16 output channels held in 8-float vectors; edges, and every loop
 * of a plain C99 build (FT_PLAIN_C or another compiler), use the plain loops.
 *
 * Counts per call (kc = k * c, to = t_out, MACs = to * kc * f):
 *   forward:          macs; bytes = 4 * (2 * macs + 2 * to * f)          (x, w; b, y)
 *   backward input:   macs; bytes = 4 * (2 * macs + t_pad * c + 2 * to * kc)
 *                                                     (w, dy; zero dx; dx load + store)
 *   backward weights: macs; adds = to * f;
 *                     bytes = 4 * (2 * macs + 2 * kc * f + to * f + 2 * f)
 *                                                     (x, dy; gw; dy for gb; gb)
 */
#include "ft_internal.h"

#if defined(__GNUC__) && !defined(__clang__) && !defined(FT_PLAIN_C)
#define FT_VEC 1
typedef float ft_v8 __attribute__((vector_size(32), aligned(4), may_alias));
#define LD8(p) (*(const ft_v8 *)(const void *)(p))
#define ST8(p, v) (*(ft_v8 *)(void *)(p) = (v))
#define TILE_F 16
#define TILE_R 4
#else
#define FT_VEC 0
#define TILE_F 1
#define TILE_R 1
#endif

FT_HOT void ft_conv1d_forward(const ft_conv_dims *d, const float *FT_RESTRICT x,
                              const float *FT_RESTRICT w, const float *FT_RESTRICT b,
                              float *FT_RESTRICT y, ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int32_t f_tiled = FT_VEC ? f - f % TILE_F : 0;
    const int64_t macs = (int64_t)to * kc * f;
    int32_t t0, j, i;

    cnt->macs += macs;
    cnt->bytes_moved += 4 * (2 * macs + 2 * (int64_t)to * f);

#if FT_VEC
    {
        int32_t f0;
        const int32_t t_tiled = to - to % TILE_R;
        for (t0 = 0; t0 < t_tiled; t0 += TILE_R) {
            const float *x0 = x + (int64_t)t0 * step, *x1 = x0 + step, *x2 = x1 + step,
                        *x3 = x2 + step;
            for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
                const ft_v8 b0 = LD8(b + f0), b1 = LD8(b + f0 + 8);
                ft_v8 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0,
                      a31 = b1;
                const float *wr = w + f0;
                for (j = 0; j < kc; ++j, wr += f) {
                    const ft_v8 w0 = LD8(wr), w1 = LD8(wr + 8);
                    const float v0 = x0[j], v1 = x1[j], v2 = x2[j], v3 = x3[j];
                    a00 += v0 * w0;
                    a01 += v0 * w1;
                    a10 += v1 * w0;
                    a11 += v1 * w1;
                    a20 += v2 * w0;
                    a21 += v2 * w1;
                    a30 += v3 * w0;
                    a31 += v3 * w1;
                }
                {
                    float *yr = y + (int64_t)t0 * f + f0;
                    ST8(yr, a00);
                    ST8(yr + 8, a01);
                    ST8(yr + f, a10);
                    ST8(yr + f + 8, a11);
                    ST8(yr + 2 * f, a20);
                    ST8(yr + 2 * f + 8, a21);
                    ST8(yr + 3 * f, a30);
                    ST8(yr + 3 * f + 8, a31);
                }
            }
        }
        for (t0 = t_tiled; t0 < to; ++t0) {
            const float *xw = x + (int64_t)t0 * step;
            for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
                ft_v8 a0 = LD8(b + f0), a1 = LD8(b + f0 + 8);
                const float *wr = w + f0;
                for (j = 0; j < kc; ++j, wr += f) {
                    a0 += xw[j] * LD8(wr);
                    a1 += xw[j] * LD8(wr + 8);
                }
                ST8(y + (int64_t)t0 * f + f0, a0);
                ST8(y + (int64_t)t0 * f + f0 + 8, a1);
            }
        }
    }
#endif
    /* Channels outside the vector tiles (all of them in a plain C build). */
    if (f_tiled < f) {
        for (t0 = 0; t0 < to; ++t0) {
            const float *xw = x + (int64_t)t0 * step;
            float *yr = y + (int64_t)t0 * f;
            for (i = f_tiled; i < f; ++i) {
                yr[i] = b[i];
            }
            for (j = 0; j < kc; ++j) {
                const float a = xw[j];
                const float *wr = w + (int64_t)j * f;
                for (i = f_tiled; i < f; ++i) {
                    yr[i] += a * wr[i];
                }
            }
        }
    }
}

#if FT_VEC
typedef int ft_v8i __attribute__((vector_size(32)));
/* Lane sums of 8 vectors in 3 shuffle levels (macros: a vector argument would change the ABI
 * of the default clone). FOLD(a, b) = [a_lo + a_hi, b_lo + b_hi]; SUM8 returns
 * [sum s0, ..., sum s7]. */
#define FOLD(a, b)                                                                         \
    (__builtin_shuffle((a), (b), (ft_v8i){0, 1, 2, 3, 8, 9, 10, 11}) +                     \
     __builtin_shuffle((a), (b), (ft_v8i){4, 5, 6, 7, 12, 13, 14, 15}))
#define PAIRS(p, q)                                                                        \
    (__builtin_shuffle((p), (q), (ft_v8i){0, 1, 8, 9, 4, 5, 12, 13}) +                     \
     __builtin_shuffle((p), (q), (ft_v8i){2, 3, 10, 11, 6, 7, 14, 15}))
#define EVENODD(p, q)                                                                      \
    (__builtin_shuffle((p), (q), (ft_v8i){0, 2, 4, 6, 8, 10, 12, 14}) +                    \
     __builtin_shuffle((p), (q), (ft_v8i){1, 3, 5, 7, 9, 11, 13, 15}))
#define SUM8(s0, s1, s2, s3, s4, s5, s6, s7)                                               \
    EVENODD(PAIRS(FOLD(s0, s2), FOLD(s1, s3)), PAIRS(FOLD(s4, s6), FOLD(s5, s7)))
#endif

FT_HOT void ft_conv1d_backward_input(const ft_conv_dims *d, const float *FT_RESTRICT dy,
                                     const float *FT_RESTRICT w, float *FT_RESTRICT dx,
                                     ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int64_t macs = (int64_t)to * kc * f;
    const int64_t n_dx = (int64_t)d->t_pad * d->c;
    int64_t q;
    int32_t t = 0, j, i;

    cnt->macs += macs;
    cnt->bytes_moved += 4 * (2 * macs + n_dx + 2 * (int64_t)to * kc);

    for (q = 0; q < n_dx; ++q) {
        dx[q] = 0.0f;
    }
    /* dx[t * step + j] += dot(w[j, :], dy[t, :]) */
#if FT_VEC
    if (f >= 8) {
        /* Tiles of 2 output steps x 4 window elements share their weight and dy loads; an odd
         * last step pairs with itself and keeps one half of the tile. */
        const int32_t f_vec = f - f % 8, j_tiled = kc - kc % 4;
        for (; t < to; t += 2) {
            const int pair = t + 1 < to;
            const float *d0 = dy + (int64_t)t * f, *d1 = pair ? d0 + f : d0;
            float *x0 = dx + (int64_t)t * step, *x1 = x0 + step;
            for (j = 0; j < j_tiled; j += 4) {
                const float *w0 = w + (int64_t)j * f, *w1 = w0 + f, *w2 = w1 + f, *w3 = w2 + f;
                ft_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                ft_v8 b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
                ft_v8 s;
                int32_t f0;
                for (f0 = 0; f0 < f_vec; f0 += 8) {
                    const ft_v8 g0 = LD8(d0 + f0), g1 = LD8(d1 + f0);
                    const ft_v8 v0 = LD8(w0 + f0), v1 = LD8(w1 + f0);
                    const ft_v8 v2 = LD8(w2 + f0), v3 = LD8(w3 + f0);
                    a0 += v0 * g0;
                    a1 += v1 * g0;
                    a2 += v2 * g0;
                    a3 += v3 * g0;
                    b0 += v0 * g1;
                    b1 += v1 * g1;
                    b2 += v2 * g1;
                    b3 += v3 * g1;
                }
                s = SUM8(a0, a1, a2, a3, b0, b1, b2, b3);
                for (i = f_vec; i < f; ++i) {
                    s[0] += w0[i] * d0[i];
                    s[1] += w1[i] * d0[i];
                    s[2] += w2[i] * d0[i];
                    s[3] += w3[i] * d0[i];
                    s[4] += w0[i] * d1[i];
                    s[5] += w1[i] * d1[i];
                    s[6] += w2[i] * d1[i];
                    s[7] += w3[i] * d1[i];
                }
                x0[j] += s[0];
                x0[j + 1] += s[1];
                x0[j + 2] += s[2];
                x0[j + 3] += s[3];
                if (pair) {
                    x1[j] += s[4];
                    x1[j + 1] += s[5];
                    x1[j + 2] += s[6];
                    x1[j + 3] += s[7];
                }
            }
            for (j = j_tiled; j < kc; ++j) {
                const float *wr = w + (int64_t)j * f;
                float s0 = 0.0f, s1 = 0.0f;
                for (i = 0; i < f; ++i) {
                    s0 += wr[i] * d0[i];
                    s1 += wr[i] * d1[i];
                }
                x0[j] += s0;
                if (pair) {
                    x1[j] += s1;
                }
            }
        }
    }
#endif
    /* Remaining output steps (all of them in a plain C build). */
    for (; t < to; ++t) {
        const float *dr = dy + (int64_t)t * f;
        float *dxw = dx + (int64_t)t * step;
        for (j = 0; j < kc; ++j) {
            const float *wr = w + (int64_t)j * f;
            float s = 0.0f;
            for (i = 0; i < f; ++i) {
                s += wr[i] * dr[i];
            }
            dxw[j] += s;
        }
    }
}

FT_HOT void ft_conv1d_backward_weights(const ft_conv_dims *d, const float *FT_RESTRICT x,
                                       const float *FT_RESTRICT dy, float *FT_RESTRICT gw,
                                       float *FT_RESTRICT gb, ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int32_t f_tiled = FT_VEC ? f - f % TILE_F : 0;
    const int32_t j_tiled = FT_VEC ? kc - kc % TILE_R : 0;
    const int64_t macs = (int64_t)to * kc * f;
    int32_t t, j0, i;

    cnt->macs += macs;
    cnt->adds += (int64_t)to * f;
    cnt->bytes_moved += 4 * (2 * macs + 2 * (int64_t)kc * f + (int64_t)to * f + 2 * (int64_t)f);

#if FT_VEC
    /* gw[j, :] += sum_t x[t * step + j] * dy[t, :], tiles of 4 window elements x 16. */
    for (j0 = 0; j0 < j_tiled; j0 += TILE_R) {
        int32_t f0;
        for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
            float *g0 = gw + (int64_t)j0 * f + f0, *g1 = g0 + f, *g2 = g1 + f, *g3 = g2 + f;
            ft_v8 a00 = LD8(g0), a01 = LD8(g0 + 8), a10 = LD8(g1), a11 = LD8(g1 + 8);
            ft_v8 a20 = LD8(g2), a21 = LD8(g2 + 8), a30 = LD8(g3), a31 = LD8(g3 + 8);
            const float *xw = x + j0;
            const float *dr = dy + f0;
            for (t = 0; t < to; ++t, xw += step, dr += f) {
                const ft_v8 d0 = LD8(dr), d1 = LD8(dr + 8);
                const float v0 = xw[0], v1 = xw[1], v2 = xw[2], v3 = xw[3];
                a00 += v0 * d0;
                a01 += v0 * d1;
                a10 += v1 * d0;
                a11 += v1 * d1;
                a20 += v2 * d0;
                a21 += v2 * d1;
                a30 += v3 * d0;
                a31 += v3 * d1;
            }
            ST8(g0, a00);
            ST8(g0 + 8, a01);
            ST8(g1, a10);
            ST8(g1 + 8, a11);
            ST8(g2, a20);
            ST8(g2 + 8, a21);
            ST8(g3, a30);
            ST8(g3 + 8, a31);
        }
    }
#endif
    /* Everything outside the vector tiles (all of it in a plain C build). */
    for (j0 = 0; j0 < kc; ++j0) {
        const int32_t i_start = j0 < j_tiled ? f_tiled : 0;
        float *gr = gw + (int64_t)j0 * f;
        if (i_start == f) {
            continue;
        }
        for (t = 0; t < to; ++t) {
            const float a = x[(int64_t)t * step + j0];
            const float *dr = dy + (int64_t)t * f;
            for (i = i_start; i < f; ++i) {
                gr[i] += a * dr[i];
            }
        }
    }
    for (t = 0; t < to; ++t) {
        const float *dr = dy + (int64_t)t * f;
        for (i = 0; i < f; ++i) {
            gb[i] += dr[i];
        }
    }
}
