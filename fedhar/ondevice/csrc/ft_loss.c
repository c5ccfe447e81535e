/*
 * ft_loss.c - softmax cross-entropy of one sample (log-sum-exp form).
 *
 * Counts per call (k classes):
 *   forward:  cmps = k - 1; adds = 2k + 2; exps = k + 1; bytes = 4 (4k + 1)
 *             (max pass, exp pass with store, sum pass, one logit)
 *   backward: divs = 1; muls = 2k; adds = 1; bytes = 4 (2k + 2)
 */
#include <math.h>

#include "ft_internal.h"

float ft_softmax_xent(int32_t k, const float *FT_RESTRICT z, int32_t label, float scale,
                      float *FT_RESTRICT exp_buf, float *FT_RESTRICT dz, ft_op_counts *fwd,
                      ft_op_counts *bwd)
{
    float m = z[0], s = 0.0f, nll;
    int32_t i;

    fwd->cmps += k - 1;
    fwd->adds += 2 * (int64_t)k + 2;
    fwd->exps += (int64_t)k + 1;
    fwd->bytes_moved += 4 * (4 * (int64_t)k + 1);
    for (i = 1; i < k; ++i) {
        m = z[i] > m ? z[i] : m;
    }
    for (i = 0; i < k; ++i) {
        exp_buf[i] = expf(z[i] - m);
    }
    for (i = 0; i < k; ++i) {
        s += exp_buf[i];
    }
    nll = logf(s) - (z[label] - m);
    if (dz != NULL) {
        const float inv_s = 1.0f / s;
        bwd->divs += 1;
        bwd->muls += 2 * (int64_t)k;
        bwd->adds += 1;
        bwd->bytes_moved += 4 * (2 * (int64_t)k + 2);
        for (i = 0; i < k; ++i) {
            dz[i] = exp_buf[i] * inv_s * scale;
        }
        dz[label] -= scale;
    }
    return nll;
}
