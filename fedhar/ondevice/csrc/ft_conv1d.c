/*
 * ft_conv1d.c - Conv1D and Dense kernels (a dense layer is a conv with K = 1, T = 1).
 *
 * Layout: x [t_pad, c], w [k, c, f], y [t_out, f]; the window of output step t is
 * x + t * s * c, k * c contiguous floats, and window element j multiplies weight row j.
 * With GCC (vector extensions) the main loops work on register tiles of 4 output rows (or
 * 4 window elements) by 2 vectors of FT_VL output channels (or window elements) (FT_VL floats per vector: 8 here,
 * 16 in the AVX-512 variant ft_conv1d_avx512.c, which compiles this file again); edges, and
 * every loop of a plain C99 build (FT_PLAIN_C or another compiler), use the plain loops. The
 * entry points pick the AVX-512 variant when the CPU has it, else these kernels (themselves
 * cloned for AVX2+FMA and AVX2 by FT_HOT).
 *
 * Counts per call (kc = k * c, to = t_out, MACs = to * kc * f):
 *   forward:          macs; bytes = 4 * (2 * macs + 2 * to * f)          (x, w; b, y)
 *   backward input:   macs; bytes = 4 * (2 * macs + t_pad * c + 2 * to * kc)
 *                                                     (w, dy; zero dx; dx load + store)
 *   backward weights: macs; adds = to * f;
 *                     bytes = 4 * (3 * macs + to * kc + to * f + 2 * f)
 *                                        (dy, gw load + store per MAC; x; dy for gb; gb)
 */
#include "ft_internal.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FT_PLAIN_C) && \
    !defined(FT_NO_TARGET_CLONES)
#define FT_HAVE_AVX512_VARIANT 1
#else
#define FT_HAVE_AVX512_VARIANT 0
#endif

#ifdef FT_CONV_VARIANT
/* Compiled by ft_conv1d_avx512.c for one target: no clones, names with its suffix. */
#define FT_KERNEL(name) name##_avx512
#define FT_KATTR
#else
#define FT_KERNEL(name) name##_generic
#define FT_KATTR static FT_HOT
#define FT_VL 8
#endif

/* The vector tiles were written for x86-64 (AVX2, AVX-512); every other target, a Cortex-M
 * included, compiles the plain loops. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FT_PLAIN_C)
#define FT_VEC 1
typedef float ft_vf __attribute__((vector_size(4 * FT_VL), aligned(4), may_alias));
typedef float ft_v8 __attribute__((vector_size(32), aligned(4), may_alias));
#define LDV(p) (*(const ft_vf *)(const void *)(p))
#define STV(p, v) (*(ft_vf *)(void *)(p) = (v))
#if FT_VL == 8
#define N8(v) (v)
#else
/* The 8-float sums of the two halves of a 16-float vector. */
#define N8(v)                                                                              \
    (__builtin_shufflevector((v), (v), 0, 1, 2, 3, 4, 5, 6, 7) +                           \
     __builtin_shufflevector((v), (v), 8, 9, 10, 11, 12, 13, 14, 15))
#endif
#define TILE_F (2 * FT_VL)
#define TILE_R 4
/* One step of a register tile: accumulators a<r><h> (row r of 4, half h of 2 vectors) gain
 * scalar v<r> times vector p (h = 0) or q (h = 1). */
#define FMA_4X2(p, q)                                                                      \
    do {                                                                                   \
        a00 += v0 * (p);                                                                   \
        a01 += v0 * (q);                                                                   \
        a10 += v1 * (p);                                                                   \
        a11 += v1 * (q);                                                                   \
        a20 += v2 * (p);                                                                   \
        a21 += v2 * (q);                                                                   \
        a30 += v3 * (p);                                                                   \
        a31 += v3 * (q);                                                                   \
    } while (0)
#else
#define FT_VEC 0
#define TILE_F 1
#define TILE_R 1
#endif

FT_KATTR void FT_KERNEL(ft_conv1d_forward)(const ft_conv_dims *d, const float *FT_RESTRICT x,
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
                const ft_vf b0 = LDV(b + f0), b1 = LDV(b + f0 + FT_VL);
                ft_vf a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0,
                      a31 = b1;
                const float *wr = w + f0;
                for (j = 0; j < kc; ++j, wr += f) {
                    const ft_vf w0 = LDV(wr), w1 = LDV(wr + FT_VL);
                    const float v0 = x0[j], v1 = x1[j], v2 = x2[j], v3 = x3[j];
                    FMA_4X2(w0, w1);
                }
                {
                    float *yr = y + (int64_t)t0 * f + f0;
                    STV(yr, a00);
                    STV(yr + FT_VL, a01);
                    STV(yr + f, a10);
                    STV(yr + f + FT_VL, a11);
                    STV(yr + 2 * f, a20);
                    STV(yr + 2 * f + FT_VL, a21);
                    STV(yr + 3 * f, a30);
                    STV(yr + 3 * f + FT_VL, a31);
                }
            }
        }
        for (t0 = t_tiled; t0 < to; ++t0) {
            const float *xw = x + (int64_t)t0 * step;
            for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
                ft_vf a0 = LDV(b + f0), a1 = LDV(b + f0 + FT_VL);
                const float *wr = w + f0;
                for (j = 0; j < kc; ++j, wr += f) {
                    a0 += xw[j] * LDV(wr);
                    a1 += xw[j] * LDV(wr + FT_VL);
                }
                STV(y + (int64_t)t0 * f + f0, a0);
                STV(y + (int64_t)t0 * f + f0 + FT_VL, a1);
            }
        }
    }
#endif
    /* Channels outside the vector tiles (all of them in a plain C build). */
    if (f_tiled < f) {
        for (t0 = 0; t0 < to; ++t0) {
            const float *xw = x + (int64_t)t0 * step;
            float *yr = y + (int64_t)t0 * f;
            /* The running sum stays in a register; weights are read down column i. */
            for (i = f_tiled; i < f; ++i) {
                const float *wc = w + i;
                float acc = b[i];
                for (j = 0; j < kc; ++j, wc += f) {
                    acc += xw[j] * *wc;
                }
                yr[i] = acc;
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


FT_KATTR void FT_KERNEL(ft_conv1d_backward_input)(const ft_conv_dims *d, const float *FT_RESTRICT dy,
                                     const float *FT_RESTRICT w, float *FT_RESTRICT dx,
                                     ft_op_counts *cnt)
{
    const int32_t f = d->f, to = d->t_out, kc = d->k * d->c, step = d->s * d->c;
    const int64_t macs = (int64_t)to * kc * f;
    const int64_t n_dx = (int64_t)d->t_pad * d->c;
    int64_t q;
    int32_t t, j, i, j_done = 0;

    cnt->macs += macs;
    cnt->bytes_moved += 4 * (2 * macs + n_dx + 2 * (int64_t)to * kc);

    for (q = 0; q < n_dx; ++q) {
        dx[q] = 0.0f;
    }
    /* dx[t * step + j] += sum_i dy[t, i] * w[j, i] */
#if FT_VEC
    enum { FT_BWD_MIN_STEPS = 24 }; /* below, transposing w costs more than it saves */
    if (to >= FT_BWD_MIN_STEPS) {
        /* The forward kernel's tiles on the transposed weights: for each block of TILE_F window
         * elements and FT_BWD_FB output channels, wt = w[block]^T (on the stack, reused by
         * every output step), then tiles of 4 steps x TILE_F elements accumulate
         * dy[t, i] * wt[i, :] and are added into their (overlapping) dx windows in step order. */
        enum { FT_BWD_FB = 128 };
        float wt[FT_BWD_FB * TILE_F];
        const int32_t j_tiled = kc - kc % TILE_F, t_tiled = to - to % TILE_R;
        int32_t j0, i0;
        for (j0 = 0; j0 < j_tiled; j0 += TILE_F) {
            for (i0 = 0; i0 < f; i0 += FT_BWD_FB) {
                const int32_t fb = f - i0 < FT_BWD_FB ? f - i0 : FT_BWD_FB;
                for (j = 0; j < TILE_F; ++j) {
                    const float *wr = w + (int64_t)(j0 + j) * f + i0;
                    for (i = 0; i < fb; ++i) {
                        wt[i * TILE_F + j] = wr[i];
                    }
                }
                for (t = 0; t < t_tiled; t += TILE_R) {
                    const float *d0 = dy + (int64_t)t * f + i0, *d1 = d0 + f, *d2 = d1 + f,
                                *d3 = d2 + f;
                    float *x0 = dx + (int64_t)t * step + j0, *x1 = x0 + step, *x2 = x1 + step,
                          *x3 = x2 + step;
                    ft_vf a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0};
                    ft_vf a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
                    const float *wr = wt;
                    for (i = 0; i < fb; ++i, wr += TILE_F) {
                        const ft_vf w0 = LDV(wr), w1 = LDV(wr + FT_VL);
                        const float v0 = d0[i], v1 = d1[i], v2 = d2[i], v3 = d3[i];
                        FMA_4X2(w0, w1);
                    }
                    STV(x0, LDV(x0) + a00);
                    STV(x0 + FT_VL, LDV(x0 + FT_VL) + a01);
                    STV(x1, LDV(x1) + a10);
                    STV(x1 + FT_VL, LDV(x1 + FT_VL) + a11);
                    STV(x2, LDV(x2) + a20);
                    STV(x2 + FT_VL, LDV(x2 + FT_VL) + a21);
                    STV(x3, LDV(x3) + a30);
                    STV(x3 + FT_VL, LDV(x3 + FT_VL) + a31);
                }
                for (; t < to; ++t) {
                    const float *d0 = dy + (int64_t)t * f + i0;
                    float *x0 = dx + (int64_t)t * step + j0;
                    ft_vf a0 = {0}, a1 = {0};
                    const float *wr = wt;
                    for (i = 0; i < fb; ++i, wr += TILE_F) {
                        a0 += d0[i] * LDV(wr);
                        a1 += d0[i] * LDV(wr + FT_VL);
                    }
                    STV(x0, LDV(x0) + a0);
                    STV(x0 + FT_VL, LDV(x0 + FT_VL) + a1);
                }
            }
        }
        j_done = j_tiled;
    } else if (f >= FT_VL) {
        /* Tiles of 2 output steps x 4 window elements share their weight and dy loads; an odd
         * last step pairs with itself and keeps one half of the tile. */
        const int32_t f_vec = f - f % FT_VL, j_tiled = kc - kc % 4;
        for (t = 0; t < to; t += 2) {
            const int pair = t + 1 < to;
            const float *d0 = dy + (int64_t)t * f, *d1 = pair ? d0 + f : d0;
            float *x0 = dx + (int64_t)t * step, *x1 = x0 + step;
            for (j = 0; j < j_tiled; j += 4) {
                const float *w0 = w + (int64_t)j * f, *w1 = w0 + f, *w2 = w1 + f, *w3 = w2 + f;
                ft_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                ft_vf b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
                ft_v8 s;
                int32_t f0;
                for (f0 = 0; f0 < f_vec; f0 += FT_VL) {
                    const ft_vf g0 = LDV(d0 + f0), g1 = LDV(d1 + f0);
                    const ft_vf v0 = LDV(w0 + f0), v1 = LDV(w1 + f0);
                    const ft_vf v2 = LDV(w2 + f0), v3 = LDV(w3 + f0);
                    a0 += v0 * g0;
                    a1 += v1 * g0;
                    a2 += v2 * g0;
                    a3 += v3 * g0;
                    b0 += v0 * g1;
                    b1 += v1 * g1;
                    b2 += v2 * g1;
                    b3 += v3 * g1;
                }
                s = SUM8(N8(a0), N8(a1), N8(a2), N8(a3), N8(b0), N8(b1), N8(b2), N8(b3));
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
        j_done = kc;
    }
#endif
    /* Window elements outside the vector blocks (all of them in a plain C build). */
    for (t = 0; t < to; ++t) {
        const float *dr = dy + (int64_t)t * f;
        float *dxw = dx + (int64_t)t * step;
        for (j = j_done; j < kc; ++j) {
            const float *wr = w + (int64_t)j * f;
            float s = 0.0f;
            for (i = 0; i < f; ++i) {
                s += wr[i] * dr[i];
            }
            dxw[j] += s;
        }
    }
}

FT_KATTR void FT_KERNEL(ft_conv1d_backward_weights)(const ft_conv_dims *d, const float *FT_RESTRICT x,
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
    cnt->bytes_moved += 4 * (3 * macs + (int64_t)to * kc + (int64_t)to * f + 2 * (int64_t)f);

#if FT_VEC
    /* gw[j, :] += sum_t x[t * step + j] * dy[t, :], tiles of 4 window elements x 16. */
    for (j0 = 0; j0 < j_tiled; j0 += TILE_R) {
        int32_t f0;
        for (f0 = 0; f0 < f_tiled; f0 += TILE_F) {
            float *g0 = gw + (int64_t)j0 * f + f0, *g1 = g0 + f, *g2 = g1 + f, *g3 = g2 + f;
            ft_vf a00 = LDV(g0), a01 = LDV(g0 + FT_VL), a10 = LDV(g1), a11 = LDV(g1 + FT_VL);
            ft_vf a20 = LDV(g2), a21 = LDV(g2 + FT_VL), a30 = LDV(g3), a31 = LDV(g3 + FT_VL);
            const float *xw = x + j0;
            const float *dr = dy + f0;
            for (t = 0; t < to; ++t, xw += step, dr += f) {
                const ft_vf d0 = LDV(dr), d1 = LDV(dr + FT_VL);
                const float v0 = xw[0], v1 = xw[1], v2 = xw[2], v3 = xw[3];
                FMA_4X2(d0, d1);
            }
            STV(g0, a00);
            STV(g0 + FT_VL, a01);
            STV(g1, a10);
            STV(g1 + FT_VL, a11);
            STV(g2, a20);
            STV(g2 + FT_VL, a21);
            STV(g3, a30);
            STV(g3 + FT_VL, a31);
        }
    }
#endif
    /* Everything outside the vector tiles (all of it in a plain C build). */
    /* gw[j, i] is loaded and stored per MAC: on a Cortex-M4 the contiguous row loop costs
     * fewer instructions than a register sum over two strided operands. */
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
    for (i = 0; i < f; ++i) {
        const float *dc = dy + i;
        float acc = gb[i];
        for (t = 0; t < to; ++t, dc += f) {
            acc += *dc;
        }
        gb[i] = acc;
    }
}

#ifndef FT_CONV_VARIANT
#if FT_HAVE_AVX512_VARIANT
void ft_conv1d_forward_avx512(const ft_conv_dims *d, const float *x, const float *w,
                              const float *b, float *y, ft_op_counts *cnt);
void ft_conv1d_backward_input_avx512(const ft_conv_dims *d, const float *dy, const float *w,
                                     float *dx, ft_op_counts *cnt);
void ft_conv1d_backward_weights_avx512(const ft_conv_dims *d, const float *x, const float *dy,
                                       float *gw, float *gb, ft_op_counts *cnt);
/* The CPU runs the AVX-512 variant (x86-64-v4: AVX-512 F, BW, CD, DQ and VL). */
#define FT_AVX512() __builtin_cpu_supports("x86-64-v4")
#endif

void ft_conv1d_forward(const ft_conv_dims *d, const float *x, const float *w, const float *b,
                       float *y, ft_op_counts *cnt)
{
#if FT_HAVE_AVX512_VARIANT
    if (FT_AVX512()) {
        ft_conv1d_forward_avx512(d, x, w, b, y, cnt);
        return;
    }
#endif
    ft_conv1d_forward_generic(d, x, w, b, y, cnt);
}

void ft_conv1d_backward_input(const ft_conv_dims *d, const float *dy, const float *w, float *dx,
                              ft_op_counts *cnt)
{
#if FT_HAVE_AVX512_VARIANT
    if (FT_AVX512()) {
        ft_conv1d_backward_input_avx512(d, dy, w, dx, cnt);
        return;
    }
#endif
    ft_conv1d_backward_input_generic(d, dy, w, dx, cnt);
}

void ft_conv1d_backward_weights(const ft_conv_dims *d, const float *x, const float *dy,
                                float *gw, float *gb, ft_op_counts *cnt)
{
#if FT_HAVE_AVX512_VARIANT
    if (FT_AVX512()) {
        ft_conv1d_backward_weights_avx512(d, x, dy, gw, gb, cnt);
        return;
    }
#endif
    ft_conv1d_backward_weights_generic(d, x, dy, gw, gb, cnt);
}
#endif
