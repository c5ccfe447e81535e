/*
 * ft_adam.c - Adam with L2 weight decay, torch.optim.Adam semantics (no AMSGrad):
 *   g' = g + wd * p;  m = m + (1 - beta1) (g' - m);  v = beta2 v + (1 - beta2) g'^2;
 *   p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps),
 * with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) at step t (the caller
 * computes both once per step). The gradient buffer is zeroed for the next batch.
 *
 * Counts per call (n elements): adds = 2n; muls = 2n; divs = 2n; exps = n (sqrtf);
 * macs = n (3 + [wd != 0]); bytes = 4 * 8n   (p, g, m, v; p, g, m, v)
 */
#include <math.h>

#include "ft_internal.h"

FT_HOT void ft_adam_update(int32_t n, float step_size, float bc2_sqrt,
                           const ft_train_config *cfg, float *FT_RESTRICT p,
                           float *FT_RESTRICT g, float *FT_RESTRICT m, float *FT_RESTRICT v,
                           ft_op_counts *cnt)
{
    const float wd = cfg->weight_decay, b2 = cfg->beta2, eps = cfg->eps;
    const float c1 = 1.0f - cfg->beta1, c2 = 1.0f - cfg->beta2;
    int32_t i;

    cnt->adds += 2 * (int64_t)n;
    cnt->muls += 2 * (int64_t)n;
    cnt->divs += 2 * (int64_t)n;
    cnt->exps += n;
    cnt->macs += (int64_t)n * (3 + (wd != 0.0f));
    cnt->bytes_moved += 4 * 8 * (int64_t)n;
    for (i = 0; i < n; ++i) {
        const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        const float mi = m[i] + c1 * (gi - m[i]);
        const float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
        g[i] = 0.0f;
    }
}
