/*
 * ft_relu.c - ReLU, in place.
 *
 * Counts per call (n elements):
 *   forward:        cmps = n; bytes = 4 * 2n        (load x, store y)
 *   backward input: cmps = n; bytes = 4 * 3n        (load y, load dy, store dx)
 */
#include "ft_internal.h"

FT_HOT void ft_relu_forward(float *FT_RESTRICT x, int32_t n, ft_op_counts *cnt)
{
    int32_t i;
    cnt->cmps += n;
    cnt->bytes_moved += 4 * 2 * (int64_t)n;
    for (i = 0; i < n; ++i) {
        x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates, as in PyTorch */
    }
}

FT_HOT void ft_relu_backward(const float *FT_RESTRICT y, float *FT_RESTRICT dy, int32_t n,
                             ft_op_counts *cnt)
{
    int32_t i;
    cnt->cmps += n;
    cnt->bytes_moved += 4 * 3 * (int64_t)n;
    for (i = 0; i < n; ++i) {
        dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
}
