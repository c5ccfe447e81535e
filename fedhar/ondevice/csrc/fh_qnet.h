/*
 * fh_qnet.h - inference of compressed 1D-CNNs in their deployed form (C99): integer networks
 * with packed 1/2/4/8-bit weights and activations (daghero2022: PACT, sub-byte and mixed
 * precision), and dynamic-range networks with int8 weights and float activations (contoli2023).
 *
 * The formats are those of fedhar/models/quantized.py (QNet, DynamicNet), whose numpy
 * references the kernels reproduce bit for bit:
 *   - input: signed int8 [C, T] (integer network) or float32 [C, T] (dynamic-range network);
 *   - a tensor of n values at b bits is packed LSB-first: value i sits at bit (i b) mod 8 of
 *     byte (i b) div 8, in C (row-major) order; 8-bit tensors are plain bytes. Weights
 *     [c_out, c_in, kernel] at w_bits are b-bit two's complement levels (b = 1: bit 1 means +1,
 *     bit 0 means -1); hidden activations are unsigned in [0, 2^b - 1];
 *   - conv/dense: acc = bias[c] + sum(q_w x_q) (int32; 'same' padding skips the taps outside
 *     the input), prod = acc mult[c] (int64), y = clamp(sign(prod) ((|prod| + 2^(r-1)) >> r),
 *     0, 2^out_bits - 1) with r = rshift[c]; the last layer writes logits acc logit_scale[c];
 *   - max pools take the maximum, average pools and GAP round half up: (sum + n div 2) div n
 *     (floor division, which matters only for the signed input before the first conv/dense).
 * A dense layer reads its input flattened (channel-major, as the activations are stored).
 * Layers with w_bits = in_bits = 1 compute their dot products with AND and popcount
 * (sum = 2 popc(w & a) - popc(a)); the others unpack sub-byte data to bytes first.
 *
 * No malloc, no global state: the caller passes a scratch buffer of at least the bytes that
 * *_get_buffer_size reports, aligned to 4 bytes. Every entry point validates its arguments and
 * returns an ft_status (fedhar_types.h): FT_ERR_NULL for a NULL pointer, FT_ERR_SHAPE for
 * inconsistent or out-of-range sizes, FT_ERR_ARG for a bad bit-width, shift, bias or
 * alignment, FT_ERR_ARENA_TOO_SMALL for a scratch buffer smaller than its _get_buffer_size;
 * the last parameter, ft_error *err (may be NULL), names the argument or field that failed,
 * with the layer as index. Operation counts (summed over the n samples) are added to *ops from
 * the loop trip counts; fh_qnet.c states the rules.
 */
#ifndef FH_QNET_H
#define FH_QNET_H

#include <stdint.h>

#include "fedhar_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Layer kinds of both network types. */
enum { FH_QNET_CONV = 0, FH_QNET_DENSE = 1, FH_QNET_MAXPOOL = 2, FH_QNET_AVGPOOL = 3,
       FH_QNET_GAP = 4 };

/** Conv padding: 'valid' (no padding) or 'same' (pad_left = (kernel - 1) / 2; output length
 *  (t_in - 1) / stride + 1). */
enum { FH_QNET_VALID = 0, FH_QNET_SAME = 1 };

/** Sizes of one layer, shared by both network types.
 *  conv: c_in channels of length t_in -> c_out of length t_out (valid: (t_in - kernel) / stride
 *  + 1); dense: c_in = flattened input size, c_out units, t_in = t_out = kernel = stride = 1,
 *  padding valid; max/avg pool: c_in = c_out channels, window kernel, stride stride, t_out =
 *  (t_in - kernel) / stride + 1; GAP: kernel = stride = t_in, t_out = 1. */
typedef struct {
    int32_t kind;    /**< FH_QNET_CONV ... FH_QNET_GAP */
    int32_t c_in;    /**< input channels (dense: input features) */
    int32_t c_out;   /**< output channels (dense: units; pools: c_in) */
    int32_t t_in;    /**< input length */
    int32_t t_out;   /**< output length */
    int32_t kernel;  /**< conv kernel or pool window */
    int32_t stride;  /**< conv or pool stride */
    int32_t padding; /**< FH_QNET_VALID or FH_QNET_SAME (conv only) */
} fh_qnet_dims;

/** One layer of an integer network. Pools: w_bits 0, in_bits = out_bits (the bits of what
 *  they pool), no tensors. Conv/dense: w_bits and in_bits in {1, 2, 4, 8} (in_bits 8 for the
 *  first conv/dense, which reads the signed input), out_bits in {1, 2, 4, 8} for a hidden
 *  layer and 0 for the last layer (logits). */
typedef struct {
    fh_qnet_dims dims;
    int32_t w_bits;
    int32_t in_bits;
    int32_t out_bits;
    const uint8_t *weight;    /**< packed [c_out, c_in, kernel] at w_bits */
    const int32_t *bias;      /**< [c_out] in accumulator units, |bias| <= 2^30 */
    const int32_t *mult;      /**< [c_out] signed Q31 multipliers (hidden; NULL for the last) */
    const int8_t *rshift;     /**< [c_out] right shifts in 1..62 (hidden; NULL for the last) */
    const float *logit_scale; /**< [c_out] (last layer; NULL for hidden layers) */
} fh_qnet_layer;

/** An integer network: int8 x [in_channels, in_length] -> float logits [n_classes]. The last
 *  layer is the last conv/dense, and c_out t_out of it is n_classes. 1 <= n_layers <= 64. */
typedef struct {
    int32_t in_channels;
    int32_t in_length;
    int32_t n_classes;
    int32_t n_layers;
    const fh_qnet_layer *layers; /**< [n_layers] in execution order */
} fh_qnet;

/** One layer of a dynamic-range network. Conv/dense: relu 1 for hidden layers, 0 for the
 *  last; pools: relu 0, no tensors. */
typedef struct {
    fh_qnet_dims dims;
    int32_t relu;
    const int8_t *weight;  /**< [c_out, c_in, kernel] int8 levels in [-127, 127] */
    const float *w_scale;  /**< [c_out] per-channel weight scales */
    const float *bias;     /**< [c_out] float biases */
} fh_dnet_layer;

/** A dynamic-range network: float x [in_channels, in_length] -> float logits [n_classes]. */
typedef struct {
    int32_t in_channels;
    int32_t in_length;
    int32_t n_classes;
    int32_t n_layers;
    const fh_dnet_layer *layers; /**< [n_layers] in execution order */
} fh_dnet;

/** The memory of a network, in bytes. buffer = ping + pong + unpacked_input +
 *  unpacked_weights + bit_columns is the scratch that *_forward needs; model is what the
 *  kernels read of the network's tensors. Integer network: ping/pong hold the packed outputs of
 *  the even/odd layers, unpacked_input the largest sub-byte input unpacked to bytes (c_in t_in),
 *  unpacked_weights the largest sub-byte weight row unpacked (c_in kernel), bit_columns the
 *  32-bit words of the largest binary layer's input window (c_in kernel bits). Dynamic-range
 *  network: ping/pong hold float32 outputs, unpacked_input the int8 quantized input of the
 *  largest conv/dense input, the other two are 0. */
typedef struct {
    int64_t model;
    int64_t ping;
    int64_t pong;
    int64_t unpacked_input;
    int64_t unpacked_weights;
    int64_t bit_columns;
    int64_t buffer;
} fh_qnet_memory;

/** Validates net and writes its memory to *mem. */
ft_status fh_qnet_get_memory(const fh_qnet *net, fh_qnet_memory *mem, ft_error *err);

/** Scratch bytes that fh_qnet_forward needs for net (fh_qnet_get_memory's buffer). */
ft_status fh_qnet_get_buffer_size(const fh_qnet *net, int32_t *bytes, ft_error *err);

/** Model bytes the kernels read: per conv/dense, the packed weights, int32 bias, and int32
 *  mult + int8 rshift (hidden) or float32 logit_scale (last) per output channel. */
ft_status fh_qnet_model_bytes(const fh_qnet *net, int64_t *bytes, ft_error *err);

/** Float logits [n, n_classes] of int8 x [n, in_channels, in_length]; adds counts to *ops.
 *  buffer: at least fh_qnet_get_buffer_size bytes, 4-byte aligned. */
ft_status fh_qnet_forward(const fh_qnet *net, const int8_t *x, int32_t n, float *logits,
                          void *buffer, int32_t buffer_bytes, ft_op_counts *ops, ft_error *err);

/** Validates net and writes its memory to *mem. */
ft_status fh_dnet_get_memory(const fh_dnet *net, fh_qnet_memory *mem, ft_error *err);

/** Scratch bytes that fh_dnet_forward needs for net. */
ft_status fh_dnet_get_buffer_size(const fh_dnet *net, int32_t *bytes, ft_error *err);

/** Float logits [n, n_classes] of finite float x [n, in_channels, in_length]; adds counts to
 *  *ops. buffer: at least fh_dnet_get_buffer_size bytes, 4-byte aligned. */
ft_status fh_dnet_forward(const fh_dnet *net, const float *x, int32_t n, float *logits,
                          void *buffer, int32_t buffer_bytes, ft_op_counts *ops, ft_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FH_QNET_H */
