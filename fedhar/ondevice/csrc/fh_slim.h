/*
 * fh_slim.h - width-sliced inference of the Daghero et al. 2022 1D-CNN template (C99).
 *
 * A variable-width network stores the tensors of its full-width model M_l once. Running it
 * at a reduced width reads the first c_out rows and c_in columns of every full weight tensor
 * with the full tensor's strides: no weight is ever copied. Only the per-channel folded
 * switchable BatchNorm data (float) or requantization data (int8) is private to a width.
 *
 * Network: n_conv blocks Conv1D(same padding, stride 1) -> folded BN -> ReLU -> MaxPool(pool,
 * stride pool; pool 1 = none), then GlobalAvgPool, then n_dense dense layers (ReLU after every
 * dense but the last). Layouts: input [N, C, T] C-contiguous; conv weight [C_out_full,
 * C_in_full, K]; dense weight [N_out_full, N_in_full]; logits [N, n_classes]; all row-major.
 *
 * No malloc, no global state: the caller passes a scratch buffer of at least
 * fh_slim_*_get_buffer_size() bytes. Every entry point validates its arguments and returns an
 * ft_status (fedhar_types.h, shared with the training API): FT_ERR_NULL for a NULL pointer,
 * FT_ERR_SHAPE for inconsistent or out-of-range sizes, FT_ERR_ARENA_TOO_SMALL for a scratch
 * buffer smaller than its _get_buffer_size, FT_ERR_ARG for a scalar out of range; the last
 * parameter, ft_error *err (may be NULL), receives which argument or field failed. Operation
 * counts (per call, summed over the N samples) are added to the ft_op_counts *ops from the
 * loop trip counts; see fh_slim.c for the exact rules.
 */
#ifndef FH_SLIM_H
#define FH_SLIM_H

#include <stdint.h>

#include "fedhar_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Sizes of one conv block at one width. 1 <= c_in <= c_in_full, 1 <= c_out <= c_out_full,
 *  kernel >= 1, pool >= 1. */
typedef struct {
    int32_t c_in_full;
    int32_t c_out_full;
    int32_t c_in;
    int32_t c_out;
    int32_t kernel;
    int32_t pool;
} fh_slim_conv_dims;

/** Sizes of one dense layer at one width; relu is 1 for hidden layers, 0 for the last. */
typedef struct {
    int32_t n_in_full;
    int32_t n_out_full;
    int32_t n_in;
    int32_t n_out;
    int32_t relu;
} fh_slim_dense_dims;

/** Input and layer counts of a network, the same for both element types. in_channels and
 *  in_length >= 1; 1 <= n_conv <= 64; 1 <= n_dense <= 64. */
typedef struct {
    int32_t in_channels;
    int32_t in_length;
    int32_t n_conv;
    int32_t n_dense;
} fh_slim_net_dims;

/** Float32 conv block: y = relu(scale[c] * sum(w x) + shift[c]), then max-pool. */
typedef struct {
    fh_slim_conv_dims dims;
    const float *weight; /**< [c_out_full, c_in_full, kernel], shared by all widths */
    const float *scale;  /**< [c_out] folded BN scale of this width */
    const float *shift;  /**< [c_out] folded BN shift (conv bias included) of this width */
} fh_slim_conv_f32;

/** Float32 dense layer: y = w x + b over the first n_out rows and n_in columns. */
typedef struct {
    fh_slim_dense_dims dims;
    const float *weight; /**< [n_out_full, n_in_full], shared */
    const float *bias;   /**< [n_out_full], shared; first n_out used */
} fh_slim_dense_f32;

/** Float32 network at one width. */
typedef struct {
    fh_slim_net_dims dims;
    const fh_slim_conv_f32 *conv;   /**< [dims.n_conv] */
    const fh_slim_dense_f32 *dense; /**< [dims.n_dense] */
} fh_slim_net_f32;

/** Int8 conv block. acc = bias[c] + sum(w_q x_q) (int32); out = clamp(round(acc * mult[c] *
 *  2^-rshift[c]), 0, 127): requantization with the BN scale folded in; the clamp at 0 is ReLU. */
typedef struct {
    fh_slim_conv_dims dims;
    const int8_t *weight; /**< [c_out_full, c_in_full, kernel], per-channel symmetric, shared */
    const int32_t *bias;  /**< [c_out] of this width, in accumulator units */
    const int32_t *mult;  /**< [c_out] signed Q31 multiplier of this width */
    const int32_t *rshift; /**< [c_out] right shift of this width, 1..62 */
} fh_slim_conv_s8;

/** Int8 dense layer. Hidden (relu = 1): requantized like a conv block. Last (relu = 0):
 *  logits[m] = (bias[m] + sum(w_q x_q)) * logit_scale[m] as float. */
typedef struct {
    fh_slim_dense_dims dims;
    const int8_t *weight;     /**< [n_out_full, n_in_full], shared */
    const int32_t *bias;      /**< [n_out] of this width */
    const int32_t *mult;      /**< [n_out] hidden layers only, else NULL */
    const int32_t *rshift;    /**< [n_out] hidden layers only, else NULL */
    const float *logit_scale; /**< [n_out] last layer only, else NULL */
} fh_slim_dense_s8;

/** Int8 network at one width; input already quantized with the model's input scale. */
typedef struct {
    fh_slim_net_dims dims;
    const fh_slim_conv_s8 *conv;   /**< [dims.n_conv] */
    const fh_slim_dense_s8 *dense; /**< [dims.n_dense] */
} fh_slim_net_s8;

/** Scratch bytes that fh_slim_forward_f32 needs for net (two activation buffers). */
ft_status fh_slim_f32_get_buffer_size(const fh_slim_net_f32 *net, int32_t *bytes,
                                      ft_error *err);

/** Logits [n, n_classes] of x [n, in_channels, in_length]; adds the counts to *ops.
 *  buffer: at least fh_slim_f32_get_buffer_size bytes, aligned for float. */
ft_status fh_slim_forward_f32(const fh_slim_net_f32 *net, const float *x, int32_t n,
                              float *logits, void *buffer, int32_t buffer_bytes,
                              ft_op_counts *ops, ft_error *err);

/** Scratch bytes that fh_slim_forward_s8 needs for net. */
ft_status fh_slim_s8_get_buffer_size(const fh_slim_net_s8 *net, int32_t *bytes,
                                     ft_error *err);

/** Float logits [n, n_classes] of int8 x [n, in_channels, in_length]; adds counts to *ops.
 *  buffer: at least fh_slim_s8_get_buffer_size bytes. Every rshift must be in 1..62. */
ft_status fh_slim_forward_s8(const fh_slim_net_s8 *net, const int8_t *x, int32_t n,
                             float *logits, void *buffer, int32_t buffer_bytes,
                             ft_op_counts *ops, ft_error *err);

/** Score-margin policy on logits [n, n_classes] (n_classes >= 2): softmax, then
 *  margin[i] = top1 - top2 probability, argmax[i] = top class, easy[i] = margin[i] > th.
 *  th in [0, 1]. Adds the policy's counts to *ops. */
ft_status fh_slim_score_margin(const float *logits, int32_t n, int32_t n_classes, float th,
                               float *margin, int32_t *argmax, uint8_t *easy,
                               ft_op_counts *ops, ft_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FH_SLIM_H */
