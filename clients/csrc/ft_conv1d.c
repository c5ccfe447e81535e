/*
 * ft_conv1d.c - Conv1D and Dense kernels (a dense layer is a conv with K = 1, T = 1).
 *
 * Layout: x [t_pad, c], w [k, c, f], y [t_out, f]; the window of output step t is
 * x + t * s * c, k * c contiguous floats, and window element j multiplies weight row j.
 * The main loops work on register tiles of 4 output rows (or 4 window elements) by 16
 * output channels, whose inner loops have constant trip counts so that the compiler keeps
 * the tile in vector registers; edges fall back to plain loops.
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

#define TILE_R 4
#define TILE_F 16

FT_HOT void ft_conv1d_forward(const ft_conv_dims *d, const float *FT_RESTRICT x,
                              const float *FT_RESTRICT w, const float *FT_RESTRICT b,
                              float *FT_RESTRICT y, ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int32_t f_tiled = f - f % TILE_F, t_tiled = to - to % TILE_R;
    const int64_t macs = (int64_t)to * kc * f;
    int32_t t0, f0, j, r, i;

    cnt->macs += macs;
    cnt->bytes_moved += 4 * (2 * macs + 2 * (int64_t)to * f);

    for (t0 = 0; t0 < t_tiled; t0 += TILE_R) {
        const float *x0 = x + (int64_t)t0 * step;
        for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
            float acc[TILE_R][TILE_F];
            for (r = 0; r < TILE_R; ++r) {
                for (i = 0; i < TILE_F; ++i) {
                    acc[r][i] = b[f0 + i];
                }
            }
            for (j = 0; j < kc; ++j) {
                const float *wr = w + (int64_t)j * f + f0;
                float a[TILE_R];
                for (r = 0; r < TILE_R; ++r) {
                    a[r] = x0[(int64_t)r * step + j];
                }
                for (r = 0; r < TILE_R; ++r) {
                    for (i = 0; i < TILE_F; ++i) {
                        acc[r][i] += a[r] * wr[i];
                    }
                }
            }
            for (r = 0; r < TILE_R; ++r) {
                for (i = 0; i < TILE_F; ++i) {
                    y[(int64_t)(t0 + r) * f + f0 + i] = acc[r][i];
                }
            }
        }
    }
    /* Rows past the last full tile: one row at a time, all channels. */
    for (t0 = t_tiled; t0 < to; ++t0) {
        const float *xw = x + (int64_t)t0 * step;
        float *yr = y + (int64_t)t0 * f;
        for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
            float acc[TILE_F];
            for (i = 0; i < TILE_F; ++i) {
                acc[i] = b[f0 + i];
            }
            for (j = 0; j < kc; ++j) {
                const float a = xw[j];
                const float *wr = w + (int64_t)j * f + f0;
                for (i = 0; i < TILE_F; ++i) {
                    acc[i] += a * wr[i];
                }
            }
            for (i = 0; i < TILE_F; ++i) {
                yr[f0 + i] = acc[i];
            }
        }
    }
    /* Channels past the last full tile, every row. */
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

FT_HOT void ft_conv1d_backward_input(const ft_conv_dims *d, const float *FT_RESTRICT dy,
                                     const float *FT_RESTRICT w, float *FT_RESTRICT dx,
                                     ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int32_t f_vec = f - f % 8, j_tiled = kc - kc % TILE_R;
    const int64_t macs = (int64_t)to * kc * f;
    const int64_t n_dx = (int64_t)d->t_pad * d->c;
    int64_t q;
    int32_t t, j0, f0, r, i;

    cnt->macs += macs;
    cnt->bytes_moved += 4 * (2 * macs + n_dx + 2 * (int64_t)to * kc);

    for (q = 0; q < n_dx; ++q) {
        dx[q] = 0.0f;
    }
    for (t = 0; t < to; ++t) {
        const float *dr = dy + (int64_t)t * f;
        float *dxw = dx + (int64_t)t * step;
        /* dxw[j] += dot(w[j, :], dy[t, :]) for 4 window elements at a time. */
        for (j0 = 0; j0 < j_tiled; j0 += TILE_R) {
            float acc[TILE_R][8];
            float sum[TILE_R];
            for (r = 0; r < TILE_R; ++r) {
                for (i = 0; i < 8; ++i) {
                    acc[r][i] = 0.0f;
                }
            }
            for (f0 = 0; f0 < f_vec; f0 += 8) {
                for (r = 0; r < TILE_R; ++r) {
                    const float *wr = w + (int64_t)(j0 + r) * f + f0;
                    for (i = 0; i < 8; ++i) {
                        acc[r][i] += wr[i] * dr[f0 + i];
                    }
                }
            }
            for (r = 0; r < TILE_R; ++r) {
                const float *wr = w + (int64_t)(j0 + r) * f;
                sum[r] = ((acc[r][0] + acc[r][4]) + (acc[r][1] + acc[r][5])) +
                         ((acc[r][2] + acc[r][6]) + (acc[r][3] + acc[r][7]));
                for (i = f_vec; i < f; ++i) {
                    sum[r] += wr[i] * dr[i];
                }
                dxw[j0 + r] += sum[r];
            }
        }
        for (j0 = j_tiled; j0 < kc; ++j0) {
            const float *wr = w + (int64_t)j0 * f;
            float s = 0.0f;
            for (i = 0; i < f; ++i) {
                s += wr[i] * dr[i];
            }
            dxw[j0] += s;
        }
    }
}

FT_HOT void ft_conv1d_backward_weights(const ft_conv_dims *d, const float *FT_RESTRICT x,
                                       const float *FT_RESTRICT dy, float *FT_RESTRICT gw,
                                       float *FT_RESTRICT gb, ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int32_t f_tiled = f - f % TILE_F, j_tiled = kc - kc % TILE_R;
    const int64_t macs = (int64_t)to * kc * f;
    int32_t t, j0, f0, r, i;

    cnt->macs += macs;
    cnt->adds += (int64_t)to * f;
    cnt->bytes_moved += 4 * (2 * macs + 2 * (int64_t)kc * f + (int64_t)to * f + 2 * (int64_t)f);

    /* gw[j, :] += sum_t x[t * step + j] * dy[t, :], tiles of 4 window elements x 16. */
    for (j0 = 0; j0 < j_tiled; j0 += TILE_R) {
        for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
            float acc[TILE_R][TILE_F];
            for (r = 0; r < TILE_R; ++r) {
                for (i = 0; i < TILE_F; ++i) {
                    acc[r][i] = gw[(int64_t)(j0 + r) * f + f0 + i];
                }
            }
            for (t = 0; t < to; ++t) {
                const float *xw = x + (int64_t)t * step + j0;
                const float *dr = dy + (int64_t)t * f + f0;
                float a[TILE_R];
                for (r = 0; r < TILE_R; ++r) {
                    a[r] = xw[r];
                }
                for (r = 0; r < TILE_R; ++r) {
                    for (i = 0; i < TILE_F; ++i) {
                        acc[r][i] += a[r] * dr[i];
                    }
                }
            }
            for (r = 0; r < TILE_R; ++r) {
                for (i = 0; i < TILE_F; ++i) {
                    gw[(int64_t)(j0 + r) * f + f0 + i] = acc[r][i];
                }
            }
        }
    }
    /* Window elements past the last tile: all channels; channels past the last tile. */
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
