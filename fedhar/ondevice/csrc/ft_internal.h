/*
 * ft_internal.h - private types and kernel prototypes of the fedhar training library.
 *
 * Kernels work on one sample, channels-last: a sequence is [T, C] with C contiguous.
 * Conv and dense weights are [K, C, F] (dense: K = 1, C = N, F = M) so that the window of
 * output step t, x[t * S * C .. t * S * C + K * C), is contiguous and multiplies the
 * contiguous weight rows. Every kernel adds its operation counts to the ft_op_counts it
 * is given, once per call, from its loop trip counts (README.md, "Operation counting").
 */
#ifndef FT_INTERNAL_H
#define FT_INTERNAL_H

#include "fedhar_train.h"
#include "ft_check.h"

/* Hot kernels get AVX2+FMA (x86-64-v3) and AVX2 clones on x86-64 GCC builds; other targets
 * compile plain C99. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(FT_NO_TARGET_CLONES)
#define FT_HOT __attribute__((target_clones("arch=x86-64-v3", "avx2", "default")))
#else
#define FT_HOT
#endif

#define FT_RESTRICT restrict

/** Geometry of a conv or dense layer for one sample (dense: t_in = t_out = k = s = 1). */
typedef struct {
    int32_t c;      /**< input channels C (dense: N) */
    int32_t t_pad;  /**< padded input length T + pad_left + pad_right */
    int32_t f;      /**< output channels F (dense: M) */
    int32_t t_out;  /**< output length */
    int32_t k;      /**< kernel */
    int32_t s;      /**< stride */
} ft_conv_dims;

/** Geometry of a pooling layer for one sample: [t_in, c] -> [t_out, c]. */
typedef struct {
    int32_t c;
    int32_t t_in;
    int32_t t_out;
    int32_t size;
    int32_t stride;
} ft_pool_dims;

/* ---- context (ft_context.c) ---------------------------------------------------------- */
/* One layer of a context: its description, its parameters and the buffers planned for it. */
typedef struct {
    ft_layer_desc d;
    uint8_t trainable;
    int32_t pad_l, pad_r; /* zero rows around this layer's output buffer */
    float *w, *b;         /* conv/dense weight [k,c,f] and bias; batchnorm gamma, beta */
    float *mean, *var;    /* batchnorm running statistics */
    float *fold;          /* batchnorm [3, c]: inv_std, scale, shift */
    float *gw, *gb;       /* gradients (NULL when frozen) */
    float *vw, *vb;       /* SGD momentum or Adam first moment (NULL when frozen or SGD
                             with momentum == 0) */
    float *sw, *sb;       /* Adam second moment (NULL when frozen or SGD) */
    float *out;           /* output data (inside a padded buffer when pad_l/pad_r > 0) */
    int32_t *idx;         /* maxpool argmax, kept for backward */
    float *dout;          /* gradient of the loss w.r.t. the output */
    float *din_base;      /* padded buffer receiving the gradient w.r.t. the input */
} ft_layer;

/* The per-client context; it sits at the start of the caller's arena. */
struct ft_context {
    uint32_t magic;
    int32_t n_layers;
    int32_t in_c, in_t, n_classes;
    int32_t first_trainable; /* -1 when nothing is trainable */
    ft_train_config cfg;
    int64_t step;            /* optimizer steps since the last plan (Adam's bias correction) */
    ft_layer *layers;
    ft_layer_desc *descs;    /* [n_layers], contiguous copy of the model description */
    int64_t *mem_cur;        /* [(n_layers + 1) * FT_MEM_COUNT] bytes in the current plan */
    int64_t *mem_peak;       /* same shape, peak over every plan */
    ft_op_counts *counts;    /* [(n_layers + 1) * FT_PHASE_COUNT] */
    uint8_t *arena;
    int64_t capacity, control_bytes, fixed_end;
    float *input;            /* input data [in_t, in_c] inside its padded buffer */
    float *stored_x;         /* [n_stored, in_c * in_t], PyTorch layout */
    int32_t *stored_y;       /* [n_stored] */
    float *class_w;          /* [K] */
    float *exp_buf;          /* [K] */
};

/* 1 if ctx is a context built by ft_context_init. */
int ft_valid_ctx(const ft_context *ctx);
/* Records success in err, then FT_ERR_NULL naming "ctx" (argument 1) unless ft_valid_ctx. */
ft_status ft_check_ctx(const ft_context *ctx, ft_error *err);
/* Elements of a layer's weight (batchnorm: gamma) and bias (batchnorm: beta) tensors. */
int64_t ft_weight_elems(const ft_layer_desc *d);
int64_t ft_bias_elems(const ft_layer_desc *d);

/* ---- conv1d / dense (ft_conv1d.c) -------------------------------------------------- */
/* x: padded input [t_pad, c]; w: [k, c, f]; b: [f]; y: [t_out, f]. */
void ft_conv1d_forward(const ft_conv_dims *d, const float *x, const float *w, const float *b,
                       float *y, ft_op_counts *cnt);
/* dx: padded input gradient [t_pad, c], fully overwritten. */
void ft_conv1d_backward_input(const ft_conv_dims *d, const float *dy, const float *w,
                              float *dx, ft_op_counts *cnt);
/* gw [k, c, f] and gb [f] accumulate this sample's gradient. */
void ft_conv1d_backward_weights(const ft_conv_dims *d, const float *x, const float *dy,
                                float *gw, float *gb, ft_op_counts *cnt);

/* ---- relu (ft_relu.c) ---------------------------------------------------------------- */
void ft_relu_forward(float *x, int32_t n, ft_op_counts *cnt);
/* dy *= (y > 0), in place. */
void ft_relu_backward(const float *y, float *dy, int32_t n, ft_op_counts *cnt);

/* ---- pooling (ft_pool.c) ------------------------------------------------------------- */
void ft_avgpool1d_forward(const ft_pool_dims *d, const float *x, float *y, ft_op_counts *cnt);
void ft_avgpool1d_backward(const ft_pool_dims *d, const float *dy, float *dx,
                           ft_op_counts *cnt);
/* idx [t_out, c] receives the flat input index of each maximum (may be NULL). */
void ft_maxpool1d_forward(const ft_pool_dims *d, const float *x, float *y, int32_t *idx,
                          ft_op_counts *cnt);
void ft_maxpool1d_backward(const ft_pool_dims *d, const float *dy, const int32_t *idx,
                           float *dx, ft_op_counts *cnt);
/* [t, c] -> [c] */
void ft_gap1d_forward(int32_t t, int32_t c, const float *x, float *y, ft_op_counts *cnt);
void ft_gap1d_backward(int32_t t, int32_t c, const float *dy, float *dx, ft_op_counts *cnt);
/* [t, c] channels-last -> [c * t] in PyTorch's flatten order, and back. */
void ft_flatten_forward(int32_t t, int32_t c, const float *x, float *y, ft_op_counts *cnt);
void ft_flatten_backward(int32_t t, int32_t c, const float *dy, float *dx, ft_op_counts *cnt);

/* ---- batchnorm (ft_batchnorm.c) ------------------------------------------------------ */
/* fold [3, c] = inv_std, scale, shift from gamma, beta, mean, var (once per batch). */
void ft_batchnorm1d_prepare(int32_t c, const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps, float *fold,
                            ft_op_counts *cnt);
void ft_batchnorm1d_forward(int32_t t, int32_t c, const float *fold, const float *x, float *y,
                            ft_op_counts *cnt);
void ft_batchnorm1d_backward_input(int32_t t, int32_t c, const float *fold, const float *dy,
                                   float *dx, ft_op_counts *cnt);
/* ggamma, gbeta [c] accumulate. */
void ft_batchnorm1d_backward_weights(int32_t t, int32_t c, const float *fold,
                                     const float *mean, const float *x, const float *dy,
                                     float *ggamma, float *gbeta, ft_op_counts *cnt);

/* ---- loss (ft_loss.c) ---------------------------------------------------------------- */
/*
 * Weighted softmax cross-entropy of one sample. exp_buf [k] is scratch. Returns the sample's
 * negative log-likelihood; writes dz[k] = scale * (softmax(z) - onehot(label)) when dz is
 * not NULL (scale = w_label / sum of the batch's w). fwd and bwd receive their counts.
 */
float ft_softmax_xent(int32_t k, const float *z, int32_t label, float scale, float *exp_buf,
                      float *dz, ft_op_counts *fwd, ft_op_counts *bwd);

/* ---- optimizer (ft_sgd.c) ------------------------------------------------------------ */
/* p -= lr * v, v = momentum * v + (g + wd * p); g is zeroed. v may be NULL if momentum 0. */
void ft_sgd_update(int32_t n, float lr, float momentum, float weight_decay, float *p,
                   float *g, float *v, ft_op_counts *cnt);
/* Adam (ft_adam.c): the caller gives lr / (1 - beta1^t) and sqrt(1 - beta2^t); g is zeroed. */
void ft_adam_update(int32_t n, float step_size, float bc2_sqrt, const ft_train_config *cfg,
                    float *p, float *g, float *m, float *v, ft_op_counts *cnt);
/* 1 if every g[i] is finite. */
int ft_all_finite(const float *g, int64_t n);

#endif /* FT_INTERNAL_H */
