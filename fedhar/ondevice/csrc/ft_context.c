/*
 * ft_context.c - the per-client context: model validation, arena planning, parameter I/O,
 * class weights, counters and memory accounting. The training and evaluation entry points
 * are in ft_train.c.
 *
 * Arena = control block (context, layer table, memory and operation counters) followed by
 * float32/int32 buffers, in this order (README.md, "Arena plan"):
 *   fixed part  : parameters, batchnorm folds, input buffer, stored samples, class weights,
 *                 softmax scratch;
 *   planned part: gradients, momentum, saved activations, maxpool indices, padded conv
 *                 inputs, the two forward ping-pong buffers, the two delta buffers.
 * The planned part depends on the trainable flags and momentum and is rebuilt by
 * ft_context_configure(). Nothing is allocated after planning.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ft_internal.h"

#define FT_MAGIC 0x46545231u /* "FTR1" */
#define FT_MAX_ELEMS ((int64_t)1 << 30)

/* Identity of the buffer that holds a layer's output during the forward pass. */
enum { BUF_INPUT = -1, BUF_PING = -2, BUF_PONG = -3 };

/* ---------------------------------------------------------------------------------- */
/* Model description checks                                                             */

static int is_trainable_kind(int32_t kind)
{
    return kind == FT_LAYER_CONV1D || kind == FT_LAYER_DENSE || kind == FT_LAYER_BATCHNORM1D;
}

int64_t ft_weight_elems(const ft_layer_desc *d)
{
    switch (d->kind) {
    case FT_LAYER_CONV1D:
        return (int64_t)d->out_c * d->in_c * d->kernel;
    case FT_LAYER_DENSE:
        return (int64_t)d->out_c * d->in_c;
    case FT_LAYER_BATCHNORM1D:
        return d->in_c;
    default:
        return 0;
    }
}

int64_t ft_bias_elems(const ft_layer_desc *d)
{
    switch (d->kind) {
    case FT_LAYER_CONV1D:
    case FT_LAYER_DENSE:
        return d->out_c;
    case FT_LAYER_BATCHNORM1D:
        return d->in_c;
    default:
        return 0;
    }
}

/* Where the model, configuration and arena arguments stand in the prototype of the entry point
 * that validates them (their numbers in its ft_error record), and the arena's name there. */
typedef struct {
    int32_t layers, n_layers, cfg, trainable, arena;
    const char *arena_name;
} ft_config_args;

/* FT_ERR_SHAPE unless field name (value v) of layer i is in [lo, hi]. */
static ft_status layer_dim(ft_error *err, int32_t arg, const char *name, int32_t i, int64_t v,
                           int64_t lo, int64_t hi)
{
    return ft_in_range(err, FT_ERR_SHAPE, arg, name, i, v, lo, hi);
}

/* Sizes common to every kind: each >= 1, and in_c * in_t, out_c * out_t <= FT_MAX_ELEMS. */
static ft_status check_layer_sizes(const ft_layer_desc *d, int32_t i, int32_t arg, ft_error *err)
{
    FT_TRY(layer_dim(err, arg, "layers[].in_c", i, d->in_c, 1, FT_MAX_ELEMS));
    FT_TRY(layer_dim(err, arg, "layers[].in_t", i, d->in_t, 1, FT_MAX_ELEMS / d->in_c));
    FT_TRY(layer_dim(err, arg, "layers[].out_c", i, d->out_c, 1, FT_MAX_ELEMS));
    return layer_dim(err, arg, "layers[].out_t", i, d->out_t, 1, FT_MAX_ELEMS / d->out_c);
}

/* A pooling window or stride: FT_ERR_ARG unless >= 1. */
static ft_status check_window(const ft_layer_desc *d, int32_t i, int32_t arg, ft_error *err)
{
    FT_TRY(ft_in_range(err, FT_ERR_ARG, arg, "layers[].kernel", i, d->kernel, 1, INT32_MAX));
    return ft_in_range(err, FT_ERR_ARG, arg, "layers[].stride", i, d->stride, 1, INT32_MAX);
}

static ft_status check_conv(const ft_layer_desc *d, int32_t i, int32_t arg, ft_error *err)
{
    const int64_t t_pad = (int64_t)d->in_t + d->pad_left + d->pad_right;
    int64_t t_out;
    FT_TRY(check_window(d, i, arg, err));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, arg, "layers[].pad_left", i, d->pad_left, 0,
                       (int64_t)d->kernel - 1));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, arg, "layers[].pad_right", i, d->pad_right, 0,
                       (int64_t)d->kernel - 1));
    FT_TRY(layer_dim(err, arg, "layers[].in_t", i, t_pad, d->kernel, FT_MAX_ELEMS / d->in_c));
    t_out = (t_pad - d->kernel) / d->stride + 1;
    FT_TRY(layer_dim(err, arg, "layers[].out_t", i, d->out_t, t_out, t_out));
    return layer_dim(err, arg, "layers[].out_c", i, d->out_c, 1,
                     FT_MAX_ELEMS / ((int64_t)d->in_c * d->kernel));
}

/* out_c and out_t must equal in_c and in_t (shape-preserving kinds). */
static ft_status check_same_shape(const ft_layer_desc *d, int32_t i, int32_t arg, ft_error *err)
{
    FT_TRY(layer_dim(err, arg, "layers[].out_c", i, d->out_c, d->in_c, d->in_c));
    return layer_dim(err, arg, "layers[].out_t", i, d->out_t, d->in_t, d->in_t);
}

/* Layer i of argument arg, on its own; FT_ERR_SHAPE or FT_ERR_ARG names the failing field. */
static ft_status check_layer(const ft_layer_desc *d, int32_t i, int32_t arg, ft_error *err)
{
    const int64_t in_n = (int64_t)d->in_c * d->in_t;
    FT_TRY(check_layer_sizes(d, i, arg, err));
    switch (d->kind) {
    case FT_LAYER_CONV1D:
        return check_conv(d, i, arg, err);
    case FT_LAYER_DENSE:
        FT_TRY(layer_dim(err, arg, "layers[].in_t", i, d->in_t, 1, 1));
        FT_TRY(layer_dim(err, arg, "layers[].out_t", i, d->out_t, 1, 1));
        return layer_dim(err, arg, "layers[].out_c", i, d->out_c, 1, FT_MAX_ELEMS / d->in_c);
    case FT_LAYER_RELU:
        return check_same_shape(d, i, arg, err);
    case FT_LAYER_BATCHNORM1D:
        FT_TRY(ft_in_range_f(err, arg, "layers[].eps", i, d->eps, 0.0f, FLT_MAX,
                             FT_BOUND_LO_OPEN));
        return check_same_shape(d, i, arg, err);
    case FT_LAYER_AVGPOOL1D:
    case FT_LAYER_MAXPOOL1D: {
        int64_t t_out;
        FT_TRY(check_window(d, i, arg, err));
        FT_TRY(layer_dim(err, arg, "layers[].in_t", i, d->in_t, d->kernel, FT_MAX_ELEMS));
        FT_TRY(layer_dim(err, arg, "layers[].out_c", i, d->out_c, d->in_c, d->in_c));
        t_out = (d->in_t - d->kernel) / d->stride + 1;
        return layer_dim(err, arg, "layers[].out_t", i, d->out_t, t_out, t_out);
    }
    case FT_LAYER_GAP1D:
        FT_TRY(layer_dim(err, arg, "layers[].out_c", i, d->out_c, d->in_c, d->in_c));
        return layer_dim(err, arg, "layers[].out_t", i, d->out_t, 1, 1);
    case FT_LAYER_FLATTEN:
        FT_TRY(layer_dim(err, arg, "layers[].out_c", i, d->out_c, in_n, in_n));
        return layer_dim(err, arg, "layers[].out_t", i, d->out_t, 1, 1);
    default:
        return ft_in_range(err, FT_ERR_ARG, arg, "layers[].kind", i, d->kind, 0,
                           FT_LAYER_KIND_COUNT - 1);
    }
}

/* The optimizer fields of cfg (argument arg). */
static ft_status check_optimizer(const ft_train_config *cfg, int32_t arg, ft_error *err)
{
    FT_TRY(ft_in_range(err, FT_ERR_ARG, arg, "cfg->optimizer", -1, cfg->optimizer, FT_OPT_SGD,
                       FT_OPT_ADAM));
    FT_TRY(ft_in_range_f(err, arg, "cfg->lr", -1, cfg->lr, 0.0f, FLT_MAX, FT_BOUND_LO_OPEN));
    FT_TRY(ft_in_range_f(err, arg, "cfg->weight_decay", -1, cfg->weight_decay, 0.0f, FLT_MAX,
                         0));
    if (cfg->optimizer == FT_OPT_SGD) {
        return ft_in_range_f(err, arg, "cfg->momentum", -1, cfg->momentum, 0.0f, 1.0f,
                             FT_BOUND_HI_OPEN);
    }
    FT_TRY(ft_in_range_f(err, arg, "cfg->momentum", -1, cfg->momentum, 0.0f, 0.0f, 0));
    FT_TRY(ft_in_range_f(err, arg, "cfg->beta1", -1, cfg->beta1, 0.0f, 1.0f, FT_BOUND_HI_OPEN));
    FT_TRY(ft_in_range_f(err, arg, "cfg->beta2", -1, cfg->beta2, 0.0f, 1.0f, FT_BOUND_HI_OPEN));
    return ft_in_range_f(err, arg, "cfg->eps", -1, cfg->eps, 0.0f, FLT_MAX, FT_BOUND_LO_OPEN);
}

static ft_status check_config(const ft_layer_desc *layers, int32_t n_layers,
                              const ft_train_config *cfg, const uint8_t *trainable,
                              const ft_config_args *a, ft_error *err)
{
    int32_t i;
    FT_TRY(ft_need(err, layers, a->layers, "layers"));
    FT_TRY(ft_need(err, cfg, a->cfg, "cfg"));
    FT_TRY(ft_need(err, trainable, a->trainable, "trainable"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, a->n_layers, "n_layers", -1, n_layers, 1, 4096));
    for (i = 0; i < n_layers; ++i) {
        FT_TRY(check_layer(&layers[i], i, a->layers, err));
        if (i > 0) {
            FT_TRY(layer_dim(err, a->layers, "layers[].in_c", i, layers[i].in_c,
                             layers[i - 1].out_c, layers[i - 1].out_c));
            FT_TRY(layer_dim(err, a->layers, "layers[].in_t", i, layers[i].in_t,
                             layers[i - 1].out_t, layers[i - 1].out_t));
        }
        FT_TRY(ft_in_range(err, FT_ERR_ARG, a->trainable, "trainable", i, trainable[i], 0,
                           is_trainable_kind(layers[i].kind) ? 1 : 0));
    }
    FT_TRY(layer_dim(err, a->layers, "layers[].out_t", n_layers - 1, layers[n_layers - 1].out_t,
                     1, 1));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, a->cfg, "cfg->n_stored_samples", -1,
                       cfg->n_stored_samples, 0, INT32_MAX));
    return check_optimizer(cfg, a->cfg, err);
}

/* ---------------------------------------------------------------------------------- */
/* Planning                                                                             */

/* A bump allocator that also runs dry (base == NULL) to size an arena. */
typedef struct {
    uint8_t *base;
    int64_t off;
    int64_t cap;
    int32_t n_layers;
    int64_t *mem; /* [(n_layers + 1) * FT_MEM_COUNT] or NULL */
} ft_planner;

static void *plan_alloc(ft_planner *p, int32_t owner, int32_t cat, int64_t elems)
{
    const int64_t bytes = 4 * elems;
    void *ptr = NULL;
    if (p->base != NULL && p->off + bytes <= p->cap) {
        ptr = p->base + p->off;
    }
    p->off += bytes;
    if (p->mem != NULL) {
        p->mem[(int64_t)(owner < 0 ? p->n_layers : owner) * FT_MEM_COUNT + cat] += bytes;
    }
    return ptr;
}

static int32_t first_trainable_layer(int32_t n, const uint8_t *trainable)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        if (trainable[i]) {
            return i;
        }
    }
    return -1;
}

/* Layer j reads its forward input again in backward (weights gradient). */
static int needs_saved_input(const ft_layer_desc *layers, const uint8_t *trainable, int32_t j)
{
    return trainable[j] && is_trainable_kind(layers[j].kind);
}

/* The buffer holding output i (i = -1: the model input) must survive until backward. */
static int keep_output(const ft_layer_desc *l, int32_t n, const uint8_t *tr, int32_t s,
                       int32_t i)
{
    for (;;) {
        if (s < 0) {
            return 0;
        }
        if (i >= 0 && l[i].kind == FT_LAYER_RELU && i > s) {
            return 1; /* ReLU backward reads its own output */
        }
        if (i + 1 < n && i + 1 >= s && needs_saved_input(l, tr, i + 1)) {
            return 1;
        }
        if (i + 1 < n && l[i + 1].kind == FT_LAYER_RELU) {
            ++i; /* the in-place ReLU shares this buffer */
            continue;
        }
        return 0;
    }
}

/* Zero rows needed around output i: those of the conv that finally reads it. */
static void output_pads(const ft_layer_desc *l, int32_t n, int32_t i, int32_t *pl, int32_t *pr)
{
    int32_t j = i + 1;
    while (j < n && l[j].kind == FT_LAYER_RELU) {
        ++j;
    }
    *pl = 0;
    *pr = 0;
    if (j < n && l[j].kind == FT_LAYER_CONV1D) {
        *pl = l[j].pad_left;
        *pr = l[j].pad_right;
    }
}

static int64_t out_elems(const ft_layer_desc *d)
{
    return (int64_t)d->out_c * d->out_t;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The ping-pong buffer that the next non-dedicated output takes after buffer cur. */
static int32_t next_ping_pong(int32_t cur)
{
    return cur == BUF_PING ? BUF_PONG : BUF_PING;
}

/* ReLU i runs in place: it shares the buffer and zero rows of its input (layer i - 1, or the
 * model input for i = 0, which gets no zero rows). */
static void alias_relu_output(ft_context *ctx, int32_t i)
{
    ft_layer *L = ctx->layers;
    L[i].out = i > 0 ? L[i - 1].out : ctx->input;
    L[i].pad_l = i > 0 ? L[i - 1].pad_l : 0;
    L[i].pad_r = i > 0 ? L[i - 1].pad_r : 0;
}

/* A weight tensor then a bias tensor of layer i, both of category cat (may be 0 elements). */
static void plan_weight_and_bias(ft_planner *p, const ft_layer_desc *l, int32_t i, int32_t cat,
                                 float **w, float **b)
{
    *w = plan_alloc(p, i, cat, ft_weight_elems(&l[i]));
    *b = plan_alloc(p, i, cat, ft_bias_elems(&l[i]));
}

/*
 * Parameters, layer by layer: weight and bias (FT_MEM_PARAMETERS); a batchnorm adds its running
 * mean and variance (FT_MEM_PARAMETERS) and its fold [3, C] (FT_MEM_SCRATCH). Owner: the layer.
 */
static void plan_parameters(ft_planner *p, const ft_layer_desc *l, int32_t n, ft_layer *L)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        float *w, *b, *mean = NULL, *var = NULL, *fold = NULL;
        plan_weight_and_bias(p, l, i, FT_MEM_PARAMETERS, &w, &b);
        if (l[i].kind == FT_LAYER_BATCHNORM1D) {
            mean = plan_alloc(p, i, FT_MEM_PARAMETERS, l[i].in_c);
            var = plan_alloc(p, i, FT_MEM_PARAMETERS, l[i].in_c);
            fold = plan_alloc(p, i, FT_MEM_SCRATCH, 3 * (int64_t)l[i].in_c);
        }
        if (L != NULL) {
            L[i].w = w;
            L[i].b = b;
            L[i].mean = mean;
            L[i].var = var;
            L[i].fold = fold;
        }
    }
}

/* Input (FT_MEM_INPUT, shared): one sample [T, C] between the zero rows of the conv that reads
 * it; ctx->input points past the leading rows. */
static void plan_input(ft_planner *p, const ft_layer_desc *l, int32_t n, ft_context *ctx)
{
    const int32_t in_c = l[0].in_c;
    int32_t pl, pr;
    float *input;
    output_pads(l, n, -1, &pl, &pr);
    input = plan_alloc(p, -1, FT_MEM_INPUT, ((int64_t)l[0].in_t + pl + pr) * in_c);
    if (ctx != NULL) {
        ctx->input = input != NULL ? input + (int64_t)pl * in_c : NULL;
    }
}

/* Stored samples (FT_MEM_STORED_SAMPLES, shared): n_stored samples [C * T] in PyTorch layout,
 * then their n_stored int32 labels. */
static void plan_stored_samples(ft_planner *p, const ft_layer_desc *l, int32_t n_stored,
                                ft_context *ctx)
{
    float *x = plan_alloc(p, -1, FT_MEM_STORED_SAMPLES, (int64_t)n_stored * l[0].in_c * l[0].in_t);
    int32_t *y = plan_alloc(p, -1, FT_MEM_STORED_SAMPLES, n_stored);
    if (ctx != NULL) {
        ctx->stored_x = x;
        ctx->stored_y = y;
    }
}

/* Loss buffers (FT_MEM_SCRATCH, shared): the class weights [K], then the softmax buffer [K]. */
static void plan_loss_buffers(ft_planner *p, int32_t k, ft_context *ctx)
{
    float *class_w = plan_alloc(p, -1, FT_MEM_SCRATCH, k);
    float *exp_buf = plan_alloc(p, -1, FT_MEM_SCRATCH, k);
    if (ctx != NULL) {
        ctx->class_w = class_w;
        ctx->exp_buf = exp_buf;
    }
}

/*
 * Gradients and optimizer state, layer by layer: a trained layer gets weight and bias
 * gradients (FT_MEM_GRADIENTS), then its optimizer state (FT_MEM_OPTIMIZER): SGD with
 * momentum != 0, weight and bias momentum; Adam, weight and bias first moments, then second
 * moments. The two categories interleave per layer. Frozen layers get neither. Owner: the layer.
 */
static void plan_gradients(ft_planner *p, const ft_layer_desc *l, int32_t n, const uint8_t *tr,
                           const ft_train_config *cfg, ft_layer *L)
{
    const int adam = cfg->optimizer == FT_OPT_ADAM;
    const int first_moment = adam || cfg->momentum != 0.0f;
    int32_t i;
    for (i = 0; i < n; ++i) {
        float *gw = NULL, *gb = NULL, *vw = NULL, *vb = NULL, *sw = NULL, *sb = NULL;
        if (tr[i]) {
            plan_weight_and_bias(p, l, i, FT_MEM_GRADIENTS, &gw, &gb);
            if (first_moment) {
                plan_weight_and_bias(p, l, i, FT_MEM_OPTIMIZER, &vw, &vb);
            }
            if (adam) {
                plan_weight_and_bias(p, l, i, FT_MEM_OPTIMIZER, &sw, &sb);
            }
        }
        if (L != NULL) {
            L[i].trainable = tr[i];
            L[i].gw = gw;
            L[i].gb = gb;
            L[i].vw = vw;
            L[i].vb = vb;
            L[i].sw = sw;
            L[i].sb = sb;
        }
    }
}

/*
 * Output of non-ReLU layer i: a dedicated buffer, with the zero rows of the conv that reads it,
 * when backward reads the output again (kept, FT_MEM_ACTIVATIONS) or when it has zero rows
 * (FT_MEM_SCRATCH). Owner: the layer. Returns 1 if it got one, 0 if it goes to a ping-pong buffer.
 */
static int plan_dedicated_output(ft_planner *p, const ft_layer_desc *l, int32_t n,
                                 const uint8_t *tr, int32_t s, int32_t i, ft_layer *L)
{
    const int kept = keep_output(l, n, tr, s, i);
    int32_t pl, pr;
    float *buf;
    output_pads(l, n, i, &pl, &pr);
    if (L != NULL) {
        L[i].pad_l = pl;
        L[i].pad_r = pr;
        L[i].out = NULL;
    }
    if (!kept && pl + pr == 0) {
        return 0;
    }
    buf = plan_alloc(p, i, kept ? FT_MEM_ACTIVATIONS : FT_MEM_SCRATCH,
                     ((int64_t)l[i].out_t + pl + pr) * l[i].out_c);
    if (L != NULL) {
        L[i].out = buf != NULL ? buf + (int64_t)pl * l[i].out_c : NULL;
    }
    return 1;
}

/*
 * Activations, in layer order: a maxpool behind the first trained layer s keeps its argmax
 * indices [out] (int32, FT_MEM_ACTIVATIONS, owner: the layer), then every non-ReLU output that
 * needs one gets its dedicated buffer (plan_dedicated_output); ReLU outputs alias their input.
 * The other outputs alternate in the ping-pong buffers: *ping_n and *pong_n receive the
 * elements each of the two needs (plan_ping_pong places them).
 */
static void plan_activations(ft_planner *p, const ft_layer_desc *l, int32_t n,
                             const uint8_t *tr, int32_t s, ft_context *ctx, int64_t *ping_n,
                             int64_t *pong_n)
{
    ft_layer *L = ctx != NULL ? ctx->layers : NULL;
    int32_t i, cur = BUF_INPUT;
    for (i = 0; i < n; ++i) {
        int32_t *idx = NULL;
        if (l[i].kind == FT_LAYER_MAXPOOL1D && s >= 0 && i > s) {
            idx = plan_alloc(p, i, FT_MEM_ACTIVATIONS, out_elems(&l[i]));
        }
        if (L != NULL) {
            L[i].idx = idx;
        }
        if (l[i].kind == FT_LAYER_RELU) {
            if (ctx != NULL) {
                alias_relu_output(ctx, i);
            }
        } else if (plan_dedicated_output(p, l, n, tr, s, i, L)) {
            cur = i;
        } else {
            cur = next_ping_pong(cur);
            if (cur == BUF_PING) {
                *ping_n = max64(*ping_n, out_elems(&l[i]));
            } else {
                *pong_n = max64(*pong_n, out_elems(&l[i]));
            }
        }
    }
}

/*
 * Ping-pong scratch (FT_MEM_SCRATCH, shared): the two forward buffers of ping_n and pong_n
 * elements, handed to the outputs that plan_activations gave no dedicated buffer, alternating
 * in the same order; then every ReLU output aliases its input again.
 */
static void plan_ping_pong(ft_planner *p, const ft_layer_desc *l, int32_t n, int64_t ping_n,
                           int64_t pong_n, ft_context *ctx)
{
    float *ping = plan_alloc(p, -1, FT_MEM_SCRATCH, ping_n);
    float *pong = plan_alloc(p, -1, FT_MEM_SCRATCH, pong_n);
    int32_t i, cur = BUF_INPUT;
    if (ctx == NULL) {
        return;
    }
    for (i = 0; i < n; ++i) {
        if (l[i].kind == FT_LAYER_RELU) {
            continue;
        }
        if (ctx->layers[i].out != NULL) { /* dedicated buffer */
            cur = i;
            continue;
        }
        cur = next_ping_pong(cur);
        ctx->layers[i].out = cur == BUF_PING ? ping : pong;
    }
    for (i = 0; i < n; ++i) {
        if (l[i].kind == FT_LAYER_RELU) {
            alias_relu_output(ctx, i);
        }
    }
}

/* Elements of the gradient w.r.t. layer d's input, with a conv's zero rows. */
static int64_t din_elems(const ft_layer_desc *d)
{
    int64_t t = d->in_t;
    if (d->kind == FT_LAYER_CONV1D) {
        t += (int64_t)d->pad_left + d->pad_right;
    }
    return (int64_t)d->in_c * t;
}

/*
 * Hands the delta buffers to the layers: the last layer's dout is A; walking down to s + 1,
 * each non-ReLU layer writes the gradient w.r.t. its input (din_base) into the other buffer
 * and the layer below reads it as its dout (past a conv's leading zero rows); ReLU works in
 * place. Layers at or below s get none.
 */
static void wire_deltas(const ft_layer_desc *l, int32_t n, int32_t s, float *da, float *db,
                        ft_layer *L)
{
    int32_t i, in_a = 1;
    for (i = 0; i < n; ++i) {
        L[i].dout = NULL;
        L[i].din_base = NULL;
    }
    if (s < 0) {
        return;
    }
    L[n - 1].dout = da;
    for (i = n - 1; i > s; --i) {
        if (l[i].kind == FT_LAYER_RELU) {
            L[i - 1].dout = L[i].dout;
            continue;
        }
        in_a = !in_a;
        L[i].din_base = in_a ? da : db;
        L[i - 1].dout = L[i].din_base;
        if (l[i].kind == FT_LAYER_CONV1D && L[i].din_base != NULL) {
            L[i - 1].dout = L[i].din_base + (int64_t)l[i].pad_left * l[i].in_c;
        }
    }
}

/*
 * Deltas (FT_MEM_DELTAS, shared): the two buffers A and B of dL/d(activation) that backward
 * alternates in (wire_deltas), each sized for the largest gradient it holds: A holds the
 * logits gradient [K] first. Both are empty when nothing trains (s < 0).
 */
static void plan_deltas(ft_planner *p, const ft_layer_desc *l, int32_t n, int32_t s, ft_layer *L)
{
    int64_t a_n = 0, b_n = 0;
    int32_t i, in_a = 1;
    float *da, *db;
    if (s >= 0) {
        a_n = l[n - 1].out_c;
        for (i = n - 1; i > s; --i) {
            if (l[i].kind == FT_LAYER_RELU) {
                continue;
            }
            in_a = !in_a;
            if (in_a) {
                a_n = max64(a_n, din_elems(&l[i]));
            } else {
                b_n = max64(b_n, din_elems(&l[i]));
            }
        }
    }
    da = plan_alloc(p, -1, FT_MEM_DELTAS, a_n);
    db = plan_alloc(p, -1, FT_MEM_DELTAS, b_n);
    if (L != NULL) {
        wire_deltas(l, n, s, da, db, L);
    }
}

/*
 * Lays out the whole arena after the control block (README.md, "Arena plan"): the fixed part
 * (parameters, input, stored samples, loss buffers), then the planned part (gradients and
 * momentum, activations, ping-pong scratch, deltas). With ctx == NULL it only sizes it
 * (p->base == NULL). Returns the bytes the arena needs.
 */
static int64_t plan_arena(ft_planner *p, const ft_layer_desc *l, int32_t n,
                          const ft_train_config *cfg, const uint8_t *tr, ft_context *ctx)
{
    const int32_t s = first_trainable_layer(n, tr);
    ft_layer *L = ctx != NULL ? ctx->layers : NULL;
    int64_t ping_n = 0, pong_n = 0;

    plan_parameters(p, l, n, L);
    plan_input(p, l, n, ctx);
    plan_stored_samples(p, l, cfg->n_stored_samples, ctx);
    plan_loss_buffers(p, l[n - 1].out_c, ctx);
    if (ctx != NULL) {
        ctx->fixed_end = p->off;
        ctx->first_trainable = s;
    }
    plan_gradients(p, l, n, tr, cfg, L);
    plan_activations(p, l, n, tr, s, ctx, &ping_n, &pong_n);
    plan_ping_pong(p, l, n, ping_n, pong_n, ctx);
    plan_deltas(p, l, n, s, L);
    return p->off;
}

static int64_t control_block_bytes(int32_t n)
{
    int64_t b = (int64_t)sizeof(ft_context);
    b += (int64_t)n * (int64_t)sizeof(ft_layer);
    b += (int64_t)n * (int64_t)sizeof(ft_layer_desc);
    b += 2 * (int64_t)(n + 1) * FT_MEM_COUNT * (int64_t)sizeof(int64_t);
    b += (int64_t)(n + 1) * FT_PHASE_COUNT * (int64_t)sizeof(ft_op_counts);
    return (b + 7) / 8 * 8;
}

/* Validates the model and configuration (numbered as in a) and sizes the arena. */
static ft_status buffer_size(const ft_layer_desc *layers, int32_t n_layers,
                             const ft_train_config *cfg, const uint8_t *trainable,
                             const ft_config_args *a, int64_t *arena_bytes,
                             int64_t *control_bytes, ft_error *err)
{
    ft_planner p;
    FT_TRY(check_config(layers, n_layers, cfg, trainable, a, err));
    p.base = NULL;
    p.off = control_block_bytes(n_layers);
    p.cap = 0;
    p.n_layers = n_layers;
    p.mem = NULL;
    *arena_bytes = plan_arena(&p, layers, n_layers, cfg, trainable, NULL);
    if (control_bytes != NULL) {
        *control_bytes = control_block_bytes(n_layers);
    }
    return FT_OK;
}

ft_status ft_context_get_buffer_size(const ft_layer_desc *layers, int32_t n_layers,
                                     const ft_train_config *cfg, const uint8_t *trainable,
                                     int64_t *arena_bytes, int64_t *control_bytes,
                                     ft_error *err)
{
    static const ft_config_args args = {1, 2, 3, 4, 5, "arena_bytes"};
    ft_ok(err);
    FT_TRY(ft_need(err, arena_bytes, 5, "arena_bytes"));
    return buffer_size(layers, n_layers, cfg, trainable, &args, arena_bytes, control_bytes, err);
}

/* Plans the arena for cfg/trainable (numbered as in a); on failure the context is left
 * unchanged. */
static ft_status replan(ft_context *ctx, const ft_train_config *cfg, const uint8_t *trainable,
                        const ft_config_args *a, ft_error *err)
{
    const int32_t n = ctx->n_layers;
    const int64_t rows = (int64_t)(n + 1) * FT_MEM_COUNT;
    ft_planner p;
    int64_t need, r;
    FT_TRY(check_config(ctx->descs, n, cfg, trainable, a, err));
    p.base = NULL;
    p.off = ctx->control_bytes;
    p.cap = 0;
    p.n_layers = n;
    p.mem = NULL;
    need = plan_arena(&p, ctx->descs, n, cfg, trainable, NULL);
    if (need > ctx->capacity) {
        return ft_fail(err, FT_ERR_ARENA_TOO_SMALL, a->arena, a->arena_name, -1,
                       (double)ctx->capacity, (double)need, HUGE_VAL, 0);
    }
    for (r = 0; r < rows; ++r) {
        ctx->mem_cur[r] = 0;
    }
    p.base = ctx->arena;
    p.off = ctx->control_bytes;
    p.cap = ctx->capacity;
    p.mem = ctx->mem_cur;
    plan_arena(&p, ctx->descs, n, cfg, trainable, ctx);
    for (r = 0; r < rows; ++r) {
        if (ctx->mem_cur[r] > ctx->mem_peak[r]) {
            ctx->mem_peak[r] = ctx->mem_cur[r];
        }
    }
    memset(ctx->arena + ctx->fixed_end, 0, (size_t)(need - ctx->fixed_end));
    ctx->cfg = *cfg;
    ctx->step = 0;
    return FT_OK;
}

ft_status ft_context_init(void *arena, int64_t arena_bytes, const ft_layer_desc *layers,
                          int32_t n_layers, const ft_train_config *cfg,
                          const uint8_t *trainable, ft_context **out, ft_error *err)
{
    static const ft_config_args args = {3, 4, 5, 6, 2, "arena_bytes"};
    ft_context *ctx;
    uint8_t *a = arena;
    int64_t ctl, need, off;
    int32_t i;
    ft_status st;

    ft_ok(err);
    FT_TRY(ft_need(err, arena, 1, "arena"));
    FT_TRY(ft_need(err, out, 7, "out"));
    *out = NULL;
    if ((uintptr_t)arena % 8 != 0) {
        return ft_fail(err, FT_ERR_ARG, 1, "arena", -1, (double)((uintptr_t)arena % 8), 0.0, 0.0,
                       0);
    }
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 2, "arena_bytes", -1, arena_bytes, 0, INT64_MAX));
    FT_TRY(buffer_size(layers, n_layers, cfg, trainable, &args, &need, &ctl, err));
    if (need > arena_bytes) {
        return ft_fail(err, FT_ERR_ARENA_TOO_SMALL, 2, "arena_bytes", -1, (double)arena_bytes,
                       (double)need, HUGE_VAL, 0);
    }
    memset(a, 0, (size_t)need);
    ctx = (ft_context *)(void *)a;
    off = (int64_t)sizeof(ft_context);
    ctx->layers = (ft_layer *)(void *)(a + off);
    off += (int64_t)n_layers * (int64_t)sizeof(ft_layer);
    ctx->mem_cur = (int64_t *)(void *)(a + off);
    off += (int64_t)(n_layers + 1) * FT_MEM_COUNT * (int64_t)sizeof(int64_t);
    ctx->mem_peak = (int64_t *)(void *)(a + off);
    off += (int64_t)(n_layers + 1) * FT_MEM_COUNT * (int64_t)sizeof(int64_t);
    ctx->counts = (ft_op_counts *)(void *)(a + off);
    off += (int64_t)(n_layers + 1) * FT_PHASE_COUNT * (int64_t)sizeof(ft_op_counts);
    ctx->descs = (ft_layer_desc *)(void *)(a + off);
    memcpy(ctx->descs, layers, (size_t)n_layers * sizeof(ft_layer_desc));
    ctx->magic = FT_MAGIC;
    ctx->n_layers = n_layers;
    ctx->in_c = layers[0].in_c;
    ctx->in_t = layers[0].in_t;
    ctx->n_classes = layers[n_layers - 1].out_c;
    ctx->arena = a;
    ctx->capacity = arena_bytes;
    ctx->control_bytes = ctl;
    for (i = 0; i < n_layers; ++i) {
        ctx->layers[i].d = layers[i];
    }
    st = replan(ctx, cfg, trainable, &args, err);
    if (st != FT_OK) {
        ctx->magic = 0;
        return st;
    }
    for (i = 0; i < n_layers; ++i) {
        if (layers[i].kind == FT_LAYER_BATCHNORM1D) {
            int32_t c;
            for (c = 0; c < layers[i].in_c; ++c) {
                ctx->layers[i].w[c] = 1.0f;
                ctx->layers[i].var[c] = 1.0f;
            }
        }
    }
    for (i = 0; i < ctx->n_classes; ++i) {
        ctx->class_w[i] = 1.0f;
    }
    *out = ctx;
    return FT_OK;
}

int ft_valid_ctx(const ft_context *ctx)
{
    return ctx != NULL && ctx->magic == FT_MAGIC;
}

ft_status ft_check_ctx(const ft_context *ctx, ft_error *err)
{
    ft_ok(err);
    return ft_valid_ctx(ctx) ? FT_OK : ft_fail(err, FT_ERR_NULL, 1, "ctx", -1, NAN, NAN, NAN, 0);
}

ft_status ft_context_configure(ft_context *ctx, const ft_train_config *cfg,
                               const uint8_t *trainable, ft_error *err)
{
    static const ft_config_args args = {1, 1, 2, 3, 1, "ctx"};
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, cfg, 2, "cfg"));
    FT_TRY(ft_need(err, trainable, 3, "trainable"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 2, "cfg->n_stored_samples", -1, cfg->n_stored_samples,
                       ctx->cfg.n_stored_samples, ctx->cfg.n_stored_samples));
    return replan(ctx, cfg, trainable, &args, err);
}

ft_status ft_set_lr(ft_context *ctx, float lr, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_in_range_f(err, 2, "lr", -1, lr, 0.0f, FLT_MAX, FT_BOUND_LO_OPEN));
    ctx->cfg.lr = lr;
    return FT_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Parameters                                                                           */

/* The tensor (layer, param) and its element count; FT_ERR_ARG for a tensor the layer lacks
 * (layer and param are arguments 2 and 3 of ft_set_param / ft_get_param). */
#define NO_TENSOR "param (a tensor this layer keeps)"

static ft_status param_slot(const ft_context *ctx, int32_t layer, int32_t param, float **ptr,
                            int64_t *n, ft_error *err)
{
    const ft_layer *L;
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 2, "layer", -1, layer, 0, (int64_t)ctx->n_layers - 1));
    L = &ctx->layers[layer];
    if (!is_trainable_kind(L->d.kind)) {
        return ft_fail(err, FT_ERR_ARG, 2, "layer (of a kind with tensors)", -1, layer, NAN,
                       NAN, 0);
    }
    switch (param) {
    case FT_PARAM_WEIGHT:
        *ptr = L->w;
        *n = ft_weight_elems(&L->d);
        return FT_OK;
    case FT_PARAM_BIAS:
        *ptr = L->b;
        *n = ft_bias_elems(&L->d);
        return FT_OK;
    case FT_PARAM_RUNNING_MEAN:
    case FT_PARAM_RUNNING_VAR:
        if (L->d.kind != FT_LAYER_BATCHNORM1D) {
            return ft_fail(err, FT_ERR_ARG, 3, NO_TENSOR, -1, param, NAN, NAN, 0);
        }
        *ptr = param == FT_PARAM_RUNNING_MEAN ? L->mean : L->var;
        *n = L->d.in_c;
        return FT_OK;
    case FT_PARAM_MOMENT1_WEIGHT:
    case FT_PARAM_MOMENT2_WEIGHT:
        *ptr = param == FT_PARAM_MOMENT1_WEIGHT ? L->vw : L->sw;
        *n = ft_weight_elems(&L->d);
        break;
    case FT_PARAM_MOMENT1_BIAS:
    case FT_PARAM_MOMENT2_BIAS:
        *ptr = param == FT_PARAM_MOMENT1_BIAS ? L->vb : L->sb;
        *n = ft_bias_elems(&L->d);
        break;
    default:
        return ft_in_range(err, FT_ERR_ARG, 3, "param", -1, param, FT_PARAM_WEIGHT,
                           FT_PARAM_MOMENT2_BIAS);
    }
    /* an optimizer state this layer does not keep (frozen, no momentum, SGD's moment2) */
    return *ptr != NULL ? FT_OK : ft_fail(err, FT_ERR_ARG, 3, NO_TENSOR, -1, param, NAN, NAN, 0);
}

/* param_slot for a caller tensor of n elements (argument 5): FT_ERR_SHAPE unless n is the
 * tensor's count. */
static ft_status param_tensor(const ft_context *ctx, int32_t layer, int32_t param, int64_t n,
                              float **ptr, ft_error *err)
{
    int64_t want = 0;
    FT_TRY(param_slot(ctx, layer, param, ptr, &want, err));
    return ft_in_range(err, FT_ERR_SHAPE, 5, "n", -1, n, want, want);
}

/* Copies a conv/dense weight between PyTorch's [F, C, K] (dense [M, N]: K = 1) and the
 * internal [K, C, F]: into the model when to_internal, else out of it. */
static void copy_weight(const ft_layer_desc *d, const float *src, float *dst, int to_internal)
{
    const int32_t f = d->out_c, c = d->in_c, k = d->kind == FT_LAYER_CONV1D ? d->kernel : 1;
    int32_t fi, ci, ki;
    for (fi = 0; fi < f; ++fi) {
        for (ci = 0; ci < c; ++ci) {
            for (ki = 0; ki < k; ++ki) {
                const int64_t api = ((int64_t)fi * c + ci) * k + ki;
                const int64_t internal = ((int64_t)ki * c + ci) * f + fi;
                if (to_internal) {
                    dst[internal] = src[api];
                } else {
                    dst[api] = src[internal];
                }
            }
        }
    }
}

/* Copies the n elements of tensor (layer, param) into the model (to_internal) or out of it.
 * Conv/dense weights change layout (copy_weight); every other tensor is the same both sides. */
static void copy_param(const ft_context *ctx, int32_t layer, int32_t param, const float *src,
                       float *dst, int64_t n, int to_internal)
{
    const ft_layer_desc *d = &ctx->layers[layer].d;
    const int weight_like = param == FT_PARAM_WEIGHT || param == FT_PARAM_MOMENT1_WEIGHT ||
                            param == FT_PARAM_MOMENT2_WEIGHT;
    if (weight_like && d->kind != FT_LAYER_BATCHNORM1D) {
        copy_weight(d, src, dst, to_internal);
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

/* FT_ERR_ARG unless every v[i] is in [0, hi] (argument arg, named name). */
static ft_status check_non_negative(const float *v, int64_t n, float hi, int32_t arg,
                                    const char *name, ft_error *err)
{
    int64_t i;
    for (i = 0; i < n; ++i) {
        FT_TRY(ft_in_range_f(err, arg, name, i, v[i], 0.0f, hi, 0));
    }
    return FT_OK;
}

ft_status ft_set_param(ft_context *ctx, int32_t layer, int32_t param, const float *src,
                       int64_t n, ft_error *err)
{
    float *dst = NULL;
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, src, 4, "src"));
    FT_TRY(param_tensor(ctx, layer, param, n, &dst, err));
    if (param == FT_PARAM_RUNNING_VAR) {
        FT_TRY(check_non_negative(src, n, HUGE_VALF, 4, "src", err));
    }
    copy_param(ctx, layer, param, src, dst, n, 1);
    return FT_OK;
}

ft_status ft_get_param(const ft_context *ctx, int32_t layer, int32_t param, float *dst,
                       int64_t n, ft_error *err)
{
    float *src = NULL;
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, dst, 4, "dst"));
    FT_TRY(param_tensor(ctx, layer, param, n, &src, err));
    copy_param(ctx, layer, param, src, dst, n, 0);
    return FT_OK;
}

ft_status ft_get_step(const ft_context *ctx, int64_t *step, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, step, 2, "step"));
    *step = ctx->step;
    return FT_OK;
}

ft_status ft_set_step(ft_context *ctx, int64_t step, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 2, "step", -1, step, 0, INT64_MAX));
    ctx->step = step;
    return FT_OK;
}

ft_status ft_set_class_weights(ft_context *ctx, const float *w, int32_t n_classes,
                               ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, w, 2, "w"));
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 3, "n_classes", -1, n_classes, ctx->n_classes,
                       ctx->n_classes));
    FT_TRY(check_non_negative(w, n_classes, FLT_MAX, 2, "w", err));
    memcpy(ctx->class_w, w, (size_t)n_classes * sizeof(float));
    return FT_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Counters and memory                                                                  */

ft_status ft_get_counts(const ft_context *ctx, ft_op_counts *out, int64_t n_out,
                        ft_error *err)
{
    int64_t rows;
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, out, 2, "out"));
    rows = (int64_t)(ctx->n_layers + 1) * FT_PHASE_COUNT;
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 3, "n_out", -1, n_out, rows, rows));
    memcpy(out, ctx->counts, (size_t)rows * sizeof(ft_op_counts));
    return FT_OK;
}

ft_status ft_reset_counts(ft_context *ctx, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    memset(ctx->counts, 0,
           (size_t)(ctx->n_layers + 1) * FT_PHASE_COUNT * sizeof(ft_op_counts));
    return FT_OK;
}

ft_status ft_get_memory(const ft_context *ctx, int64_t *peak, int64_t n_out,
                        int64_t *control_bytes, int64_t *capacity_bytes, ft_error *err)
{
    int64_t rows;
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, peak, 2, "peak"));
    rows = (int64_t)(ctx->n_layers + 1) * FT_MEM_COUNT;
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 3, "n_out", -1, n_out, rows, rows));
    memcpy(peak, ctx->mem_peak, (size_t)rows * sizeof(int64_t));
    if (control_bytes != NULL) {
        *control_bytes = ctx->control_bytes;
    }
    if (capacity_bytes != NULL) {
        *capacity_bytes = ctx->capacity;
    }
    return FT_OK;
}

ft_status ft_get_n_layers(const ft_context *ctx, int32_t *n_layers, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, n_layers, 2, "n_layers"));
    *n_layers = ctx->n_layers;
    return FT_OK;
}
