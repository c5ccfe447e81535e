/*
 * ft_batchnorm.c - eval-mode BatchNorm1D (frozen running statistics, trainable gamma/beta)
 * on channels-last [T, C], and its folding into the preceding conv.
 *
 * fold [3, c]: inv_std = 1 / sqrt(var + eps), scale = gamma * inv_std,
 * shift = beta - mean * scale; y = x * scale + shift.
 *
 * Counts per call (n = t * c):
 *   prepare (once per batch, forward phase): adds = c; divs = c; exps = c (sqrtf);
 *            muls = c; macs = c; bytes = 4 * 7c
 *   forward:          macs = n; bytes = 4 * 4n       (x, scale, shift; y)
 *   backward input:   muls = n; bytes = 4 * 3n       (dy, scale; dx)
 *   backward weights: adds = 2n; muls = n; macs = n; bytes = 4 * 8n
 *                     (x, mean, inv_std, dy, ggamma, gbeta; ggamma, gbeta)
 */
#include <math.h>

#include "ft_internal.h"

void ft_batchnorm1d_prepare(int32_t c, const float *FT_RESTRICT gamma,
                            const float *FT_RESTRICT beta, const float *FT_RESTRICT mean,
                            const float *FT_RESTRICT var, float eps, float *FT_RESTRICT fold,
                            ft_op_counts *cnt)
{
    float *inv_std = fold, *scale = fold + c, *shift = fold + 2 * c;
    int32_t i;

    cnt->adds += c;
    cnt->divs += c;
    cnt->exps += c;
    cnt->muls += c;
    cnt->macs += c;
    cnt->bytes_moved += 4 * 7 * (int64_t)c;
    for (i = 0; i < c; ++i) {
        inv_std[i] = 1.0f / sqrtf(var[i] + eps);
        scale[i] = gamma[i] * inv_std[i];
        shift[i] = beta[i] - mean[i] * scale[i];
    }
}

FT_HOT void ft_batchnorm1d_forward(int32_t t, int32_t c, const float *FT_RESTRICT fold,
                                   const float *FT_RESTRICT x, float *FT_RESTRICT y,
                                   ft_op_counts *cnt)
{
    const float *scale = fold + c, *shift = fold + 2 * c;
    int32_t q, i;

    cnt->macs += (int64_t)t * c;
    cnt->bytes_moved += 4 * 4 * (int64_t)t * c;
    for (q = 0; q < t; ++q) {
        const float *xr = x + (int64_t)q * c;
        float *yr = y + (int64_t)q * c;
        for (i = 0; i < c; ++i) {
            yr[i] = xr[i] * scale[i] + shift[i];
        }
    }
}

FT_HOT void ft_batchnorm1d_backward_input(int32_t t, int32_t c, const float *FT_RESTRICT fold,
                                          const float *FT_RESTRICT dy, float *FT_RESTRICT dx,
                                          ft_op_counts *cnt)
{
    const float *scale = fold + c;
    int32_t q, i;

    cnt->muls += (int64_t)t * c;
    cnt->bytes_moved += 4 * 3 * (int64_t)t * c;
    for (q = 0; q < t; ++q) {
        const float *dr = dy + (int64_t)q * c;
        float *xr = dx + (int64_t)q * c;
        for (i = 0; i < c; ++i) {
            xr[i] = dr[i] * scale[i];
        }
    }
}

FT_HOT void ft_batchnorm1d_backward_weights(int32_t t, int32_t c, const float *FT_RESTRICT fold,
                                            const float *FT_RESTRICT mean,
                                            const float *FT_RESTRICT x,
                                            const float *FT_RESTRICT dy,
                                            float *FT_RESTRICT ggamma, float *FT_RESTRICT gbeta,
                                            ft_op_counts *cnt)
{
    const float *inv_std = fold;
    const int64_t n = (int64_t)t * c;
    int32_t q, i;

    cnt->adds += 2 * n;
    cnt->muls += n;
    cnt->macs += n;
    cnt->bytes_moved += 4 * 8 * n;
    for (q = 0; q < t; ++q) {
        const float *xr = x + (int64_t)q * c;
        const float *dr = dy + (int64_t)q * c;
        for (i = 0; i < c; ++i) {
            ggamma[i] += dr[i] * ((xr[i] - mean[i]) * inv_std[i]);
            gbeta[i] += dr[i];
        }
    }
}

ft_status ft_batchnorm1d_fold(float *w, float *b, int32_t f, int32_t ck, const float *gamma,
                              const float *beta, const float *mean, const float *var,
                              float eps, ft_error *err)
{
    int32_t i, j;
    ft_ok(err);
    FT_TRY(ft_need(err, w, 1, "w"));
    FT_TRY(ft_need(err, b, 2, "b"));
    FT_TRY(ft_need(err, gamma, 5, "gamma"));
    FT_TRY(ft_need(err, beta, 6, "beta"));
    FT_TRY(ft_need(err, mean, 7, "mean"));
    FT_TRY(ft_need(err, var, 8, "var"));
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 3, "f", -1, f, 1, INT32_MAX));
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 4, "ck", -1, ck, 1, INT32_MAX));
    FT_TRY(ft_in_range_f(err, 9, "eps", -1, eps, 0.0f, HUGE_VALF, FT_BOUND_LO_OPEN));
    for (i = 0; i < f; ++i) {
        float s;
        if (!(var[i] + eps > 0.0f)) {
            return ft_fail(err, FT_ERR_NUMERIC, 8, "var", i, var[i], -eps, HUGE_VAL,
                           FT_BOUND_LO_OPEN);
        }
        s = gamma[i] / sqrtf(var[i] + eps);
        for (j = 0; j < ck; ++j) {
            w[(int64_t)i * ck + j] *= s;
        }
        b[i] = (b[i] - mean[i]) * s + beta[i];
    }
    return FT_OK;
}
