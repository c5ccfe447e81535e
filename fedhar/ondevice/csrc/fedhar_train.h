/*
 * fedhar_train.h - public API of the fedhar on-device training library (portable C99).
 *
 * A sequential float32 1D-CNN is described by an array of ft_layer_desc. The caller gives
 * ONE arena (byte buffer); ft_context_init() places the context, the parameters and every
 * training buffer in it, and never allocates afterwards. Many contexts may live in one
 * process: the library has no global state.
 *
 * Tensor layouts at the API are PyTorch's: samples [N, C, T] (C-contiguous), labels [N]
 * int32, logits [N, K], conv weight [F, C, K], dense weight [M, N], vectors [C] or [F].
 * Internally, activations are channels-last [T, C] and weights are [K, C, F] / [N, M];
 * ft_set_param / ft_get_param convert.
 *
 * Every entry point returns an ft_status and takes, last, an ft_error *err (may be NULL) that
 * receives which argument failed, the value found and the accepted range; counters are
 * ft_op_counts (all three in fedhar_types.h, shared with the width-sliced inference API
 * fh_slim.h). See README.md for the arena plan, the
 * operation counting rules and the exact meaning of every counter.
 */
#ifndef FEDHAR_TRAIN_H
#define FEDHAR_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "fedhar_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Layer kinds (values are part of the ABI). */
typedef enum {
    FT_LAYER_CONV1D = 0,
    FT_LAYER_DENSE = 1,
    FT_LAYER_RELU = 2,
    FT_LAYER_AVGPOOL1D = 3,
    FT_LAYER_MAXPOOL1D = 4,
    FT_LAYER_GAP1D = 5,
    FT_LAYER_FLATTEN = 6,
    FT_LAYER_BATCHNORM1D = 7,
    FT_LAYER_KIND_COUNT = 8
} ft_layer_kind;

/** Parameter tensors of a layer, for ft_set_param / ft_get_param. */
typedef enum {
    FT_PARAM_WEIGHT = 0,       /**< conv [F,C,K], dense [M,N], batchnorm gamma [C] */
    FT_PARAM_BIAS = 1,         /**< conv [F], dense [M], batchnorm beta [C] */
    FT_PARAM_RUNNING_MEAN = 2, /**< batchnorm only, [C], frozen */
    FT_PARAM_RUNNING_VAR = 3,  /**< batchnorm only, [C], frozen */
    /* Optimizer state of a trainable layer, in the layout of its weight or bias: SGD's
     * momentum buffer or Adam's first moment, and Adam's second moment. FT_ERR_ARG when the
     * layer keeps no such state (frozen, SGD without momentum, or the second moment of SGD).
     * With ft_get_step/ft_set_step they checkpoint a run: restoring them into a context of
     * the same model and configuration continues it exactly. */
    FT_PARAM_MOMENT1_WEIGHT = 4,
    FT_PARAM_MOMENT1_BIAS = 5,
    FT_PARAM_MOMENT2_WEIGHT = 6,
    FT_PARAM_MOMENT2_BIAS = 7
} ft_param_id;

/** Memory categories of the arena (see README.md for what each one holds). */
typedef enum {
    FT_MEM_PARAMETERS = 0,
    FT_MEM_GRADIENTS = 1,
    FT_MEM_OPTIMIZER = 2,
    FT_MEM_ACTIVATIONS = 3,
    FT_MEM_DELTAS = 4,
    FT_MEM_INPUT = 5,
    FT_MEM_STORED_SAMPLES = 6,
    FT_MEM_SCRATCH = 7,
    FT_MEM_COUNT = 8
} ft_mem_category;

/** Phases of operation counting. */
typedef enum {
    FT_PHASE_FORWARD = 0,
    FT_PHASE_BACKWARD_INPUT = 1,
    FT_PHASE_BACKWARD_WEIGHTS = 2,
    FT_PHASE_UPDATE = 3,
    FT_PHASE_COUNT = 4
} ft_phase;

/**
 * One layer, per-sample shapes. Sequences are [C, T]; vectors are [F] written as C = F,
 * T = 1. Ranges: all sizes >= 1 (pads >= 0); conv pads < kernel; dense needs in_t == 1.
 */
typedef struct {
    int32_t kind;      /**< ft_layer_kind */
    int32_t in_c;      /**< input channels (or features) */
    int32_t in_t;      /**< input length (1 for vectors) */
    int32_t out_c;     /**< output channels / units */
    int32_t out_t;     /**< output length (1 for vectors) */
    int32_t kernel;    /**< conv kernel K or pooling window; 0 for other kinds */
    int32_t stride;    /**< conv or pooling stride; 0 for other kinds */
    int32_t pad_left;  /**< conv zero padding before the sequence */
    int32_t pad_right; /**< conv zero padding after the sequence */
    float eps;         /**< batchnorm epsilon (> 0) */
} ft_layer_desc;

/** Optimizers (values are part of the ABI). */
typedef enum {
    FT_OPT_SGD = 0,  /**< torch.optim.SGD, dampening 0, no Nesterov */
    FT_OPT_ADAM = 1  /**< torch.optim.Adam, no AMSGrad, L2 weight decay */
} ft_optimizer;

/** Optimizer and storage configuration. */
typedef struct {
    float lr;                  /**< learning rate, > 0 */
    float momentum;            /**< SGD: in [0, 1), 0 allocates no momentum buffers; Adam: 0 */
    float weight_decay;        /**< >= 0, L2 term added to every trained gradient */
    int32_t n_stored_samples;  /**< >= 0, local samples reserved in the arena */
    int32_t optimizer;         /**< an ft_optimizer */
    float beta1;               /**< Adam: in [0, 1), decay of the first moment */
    float beta2;               /**< Adam: in [0, 1), decay of the second moment */
    float eps;                 /**< Adam: > 0, added to the root of the second moment */
} ft_train_config;

/** Opaque per-client context; lives at the start of the caller's arena. */
typedef struct ft_context ft_context;

/**
 * Bytes of arena needed for a model and configuration.
 * trainable[n_layers]: 1 = train this layer (only conv1d, dense, batchnorm1d may be 1).
 * Writes the control block (context + layer table) bytes to *control_bytes (may be NULL)
 * and the total arena bytes to *arena_bytes.
 */
ft_status ft_context_get_buffer_size(const ft_layer_desc *layers, int32_t n_layers,
                                     const ft_train_config *cfg, const uint8_t *trainable,
                                     int64_t *arena_bytes, int64_t *control_bytes,
                                     ft_error *err);

/**
 * Builds a context in arena (8-byte aligned, arena_bytes long). Parameters start at zero,
 * batchnorm running variance at one, class weights at one. *out receives the handle.
 */
ft_status ft_context_init(void *arena, int64_t arena_bytes, const ft_layer_desc *layers,
                          int32_t n_layers, const ft_train_config *cfg,
                          const uint8_t *trainable, ft_context **out, ft_error *err);

/**
 * Changes the optimizer configuration and/or trainable flags and re-plans the training part
 * of the arena. Parameters and stored samples are kept; gradients and momentum restart
 * from zero (like building a new torch optimizer). cfg->n_stored_samples must not change.
 */
ft_status ft_context_configure(ft_context *ctx, const ft_train_config *cfg,
                               const uint8_t *trainable, ft_error *err);

/**
 * Sets the learning rate (> 0, finite) and keeps every optimizer state: the step of a
 * learning-rate schedule (torch's scheduler changing a param group's lr).
 */
ft_status ft_set_lr(ft_context *ctx, float lr, ft_error *err);

/** Copies one parameter tensor in PyTorch layout (n = its element count) into the model. */
ft_status ft_set_param(ft_context *ctx, int32_t layer, int32_t param, const float *src,
                       int64_t n, ft_error *err);

/** Copies one parameter tensor out of the model, in PyTorch layout. */
ft_status ft_get_param(const ft_context *ctx, int32_t layer, int32_t param, float *dst,
                       int64_t n, ft_error *err);

/** Optimizer steps taken since the trainable set was last planned (Adam's bias correction). */
ft_status ft_get_step(const ft_context *ctx, int64_t *step, ft_error *err);

/** Sets the step count (>= 0), to restore a checkpoint (see FT_PARAM_MOMENT1_WEIGHT). */
ft_status ft_set_step(ft_context *ctx, int64_t step, ft_error *err);

/** Per-class loss weights w[K] (each finite and >= 0; CrossEntropyLoss(weight=w)). */
ft_status ft_set_class_weights(ft_context *ctx, const float *w, int32_t n_classes,
                               ft_error *err);

/**
 * One SGD step on a batch: x [n, c, t] float32, y [n] int32 in [0, K). Per-sample forward
 * and backward accumulate gradients; one update follows. *loss = sum(w_y nll) / sum(w_y).
 */
ft_status ft_train_batch(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                         int32_t c, int32_t t, float *loss, ft_error *err);

/**
 * One epoch: batches of batch_size over order[n_order] (indices into x/y; the last batch may
 * be short). x == NULL and y == NULL train from the stored samples (n = number stored).
 * *mean_loss = mean of the batch losses.
 */
ft_status ft_train_epoch(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                         int32_t c, int32_t t, const int32_t *order, int32_t n_order,
                         int32_t batch_size, float *mean_loss, ft_error *err);

/** Forward pass only: x [n, c, t] -> logits [n, K]. */
ft_status ft_logits(ft_context *ctx, const float *x, int32_t n, int32_t c, int32_t t,
                    float *logits, ft_error *err);

/** Copies n samples x [n, c, t], y [n] into the stored-sample region at slots first.. */
ft_status ft_store_samples(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                           int32_t c, int32_t t, int32_t first, ft_error *err);

/** Copies counters: out[(n_layers + 1) * FT_PHASE_COUNT]; row n_layers is the loss. */
ft_status ft_get_counts(const ft_context *ctx, ft_op_counts *out, int64_t n_out,
                        ft_error *err);

/** Zeroes every counter. */
ft_status ft_reset_counts(ft_context *ctx, ft_error *err);

/**
 * Arena accounting. peak[(n_layers + 1) * FT_MEM_COUNT] receives the peak bytes per layer and
 * category; row n_layers holds buffers shared by all layers. *control_bytes and
 * *capacity_bytes receive the control block size and the arena size (either may be NULL).
 */
ft_status ft_get_memory(const ft_context *ctx, int64_t *peak, int64_t n_out,
                        int64_t *control_bytes, int64_t *capacity_bytes, ft_error *err);

/** Number of layers of the context's model. */
ft_status ft_get_n_layers(const ft_context *ctx, int32_t *n_layers, ft_error *err);

/**
 * Folds an eval-mode batchnorm into the conv that precedes it, in PyTorch layout:
 * w[f, c, k] *= s_f and b[f] = (b[f] - mean[f]) * s_f + beta[f], s_f = gamma[f] / sqrt(var[f]
 * + eps). Shapes: w [F, ck] with ck = C * K, b/gamma/beta/mean/var [F]. eps > 0.
 */
ft_status ft_batchnorm1d_fold(float *w, float *b, int32_t f, int32_t ck, const float *gamma,
                              const float *beta, const float *mean, const float *var,
                              float eps, ft_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FEDHAR_TRAIN_H */
