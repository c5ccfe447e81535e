/*
 * ft_sgd.c - SGD with momentum and weight decay, torch.optim.SGD semantics (dampening 0,
 * no Nesterov): g' = g + wd * p; v = momentum * v + g'; p = p - lr * v (v = g' when
 * momentum is 0). The gradient buffer is zeroed for the next batch.
 *
 * Counts per call (n elements): macs = n (1 + [wd != 0] + [momentum != 0]);
 * bytes = 4 n (4 + 2 [momentum != 0])   (g, p; p, g; v load + store)
 */
#include <math.h>

#include "ft_internal.h"

FT_HOT void ft_sgd_update(int32_t n, float lr, float momentum, float weight_decay,
                          float *FT_RESTRICT p, float *FT_RESTRICT g, float *FT_RESTRICT v,
                          ft_op_counts *cnt)
{
    const float neg_lr = -lr;
    const int use_m = momentum != 0.0f && v != NULL;
    int32_t i;

    cnt->macs += (int64_t)n * (1 + (weight_decay != 0.0f) + use_m);
    cnt->bytes_moved += 4 * (int64_t)n * (4 + 2 * use_m);
    if (weight_decay != 0.0f) {
        for (i = 0; i < n; ++i) {
            g[i] += weight_decay * p[i];
        }
    }
    if (use_m) {
        for (i = 0; i < n; ++i) {
            v[i] = v[i] * momentum + g[i];
            p[i] += neg_lr * v[i];
            g[i] = 0.0f;
        }
    } else {
        for (i = 0; i < n; ++i) {
            p[i] += neg_lr * g[i];
            g[i] = 0.0f;
        }
    }
}

int ft_all_finite(const float *g, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; ++i) {
        if (!isfinite(g[i])) {
            return 0;
        }
    }
    return 1;
}
