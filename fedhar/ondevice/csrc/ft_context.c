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

static ft_status check_layer(const ft_layer_desc *d)
{
    const int64_t in_n = (int64_t)d->in_c * d->in_t, out_n = (int64_t)d->out_c * d->out_t;
    if (d->in_c < 1 || d->in_t < 1 || d->out_c < 1 || d->out_t < 1 || in_n > FT_MAX_ELEMS ||
        out_n > FT_MAX_ELEMS) {
        return FT_ERR_SHAPE;
    }
    switch (d->kind) {
    case FT_LAYER_CONV1D: {
        int64_t t_pad = (int64_t)d->in_t + d->pad_left + d->pad_right;
        if (d->kernel < 1 || d->stride < 1 || d->pad_left < 0 || d->pad_right < 0 ||
            d->pad_left >= d->kernel || d->pad_right >= d->kernel) {
            return FT_ERR_ARG;
        }
        if (t_pad < d->kernel || d->out_t != (t_pad - d->kernel) / d->stride + 1 ||
            ft_weight_elems(d) > FT_MAX_ELEMS || t_pad * d->in_c > FT_MAX_ELEMS) {
            return FT_ERR_SHAPE;
        }
        return FT_OK;
    }
    case FT_LAYER_DENSE:
        return (d->in_t == 1 && d->out_t == 1 && ft_weight_elems(d) <= FT_MAX_ELEMS)
                   ? FT_OK
                   : FT_ERR_SHAPE;
    case FT_LAYER_RELU:
        return (d->out_c == d->in_c && d->out_t == d->in_t) ? FT_OK : FT_ERR_SHAPE;
    case FT_LAYER_BATCHNORM1D:
        if (!(d->eps > 0.0f) || !isfinite(d->eps)) {
            return FT_ERR_ARG;
        }
        return (d->out_c == d->in_c && d->out_t == d->in_t) ? FT_OK : FT_ERR_SHAPE;
    case FT_LAYER_AVGPOOL1D:
    case FT_LAYER_MAXPOOL1D:
        if (d->kernel < 1 || d->stride < 1) {
            return FT_ERR_ARG;
        }
        return (d->in_t >= d->kernel && d->out_c == d->in_c &&
                d->out_t == (d->in_t - d->kernel) / d->stride + 1)
                   ? FT_OK
                   : FT_ERR_SHAPE;
    case FT_LAYER_GAP1D:
        return (d->out_c == d->in_c && d->out_t == 1) ? FT_OK : FT_ERR_SHAPE;
    case FT_LAYER_FLATTEN:
        return (d->out_c == in_n && d->out_t == 1) ? FT_OK : FT_ERR_SHAPE;
    default:
        return FT_ERR_ARG;
    }
}

static ft_status check_config(const ft_layer_desc *layers, int32_t n_layers,
                              const ft_train_config *cfg, const uint8_t *trainable)
{
    int32_t i;
    if (layers == NULL || cfg == NULL || trainable == NULL) {
        return FT_ERR_NULL;
    }
    if (n_layers < 1 || n_layers > 4096) {
        return FT_ERR_ARG;
    }
    for (i = 0; i < n_layers; ++i) {
        ft_status st = check_layer(&layers[i]);
        if (st != FT_OK) {
            return st;
        }
        if (i > 0 && (layers[i].in_c != layers[i - 1].out_c ||
                      layers[i].in_t != layers[i - 1].out_t)) {
            return FT_ERR_SHAPE;
        }
        if (trainable[i] > 1 || (trainable[i] && !is_trainable_kind(layers[i].kind))) {
            return FT_ERR_ARG;
        }
    }
    if (layers[n_layers - 1].out_t != 1) {
        return FT_ERR_SHAPE;
    }
    if (!(cfg->lr > 0.0f) || !isfinite(cfg->lr) || !(cfg->momentum >= 0.0f) ||
        !(cfg->momentum < 1.0f) || !(cfg->weight_decay >= 0.0f) ||
        !isfinite(cfg->weight_decay) || cfg->n_stored_samples < 0) {
        return FT_ERR_ARG;
    }
    return FT_OK;
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

/*
 * Lays out the whole arena. With ctx == NULL it only sizes it (p->base == NULL). Returns
 * the bytes the arena needs.
 */
static int64_t plan_arena(ft_planner *p, const ft_layer_desc *l, int32_t n,
                          const ft_train_config *cfg, const uint8_t *tr, ft_context *ctx)
{
    const int32_t s = first_trainable_layer(n, tr);
    const int32_t in_c = l[0].in_c, in_t = l[0].in_t, k = l[n - 1].out_c;
    ft_layer *L = ctx != NULL ? ctx->layers : NULL;
    int32_t i, pl, pr, cur;
    int64_t ping_n = 0, pong_n = 0, da_n = 0, db_n = 0;
    float *ping, *pong, *da, *db;

    /* Fixed part. */
    for (i = 0; i < n; ++i) {
        float *w = plan_alloc(p, i, FT_MEM_PARAMETERS, ft_weight_elems(&l[i]));
        float *b = plan_alloc(p, i, FT_MEM_PARAMETERS, ft_bias_elems(&l[i]));
        if (L != NULL) {
            L[i].w = w;
            L[i].b = b;
        }
        if (l[i].kind == FT_LAYER_BATCHNORM1D) {
            float *mean = plan_alloc(p, i, FT_MEM_PARAMETERS, l[i].in_c);
            float *var = plan_alloc(p, i, FT_MEM_PARAMETERS, l[i].in_c);
            float *fold = plan_alloc(p, i, FT_MEM_SCRATCH, 3 * (int64_t)l[i].in_c);
            if (L != NULL) {
                L[i].mean = mean;
                L[i].var = var;
                L[i].fold = fold;
            }
        }
    }
    output_pads(l, n, -1, &pl, &pr);
    {
        float *input = plan_alloc(p, -1, FT_MEM_INPUT, ((int64_t)in_t + pl + pr) * in_c);
        float *sx = plan_alloc(p, -1, FT_MEM_STORED_SAMPLES,
                               (int64_t)cfg->n_stored_samples * in_c * in_t);
        int32_t *sy = plan_alloc(p, -1, FT_MEM_STORED_SAMPLES, cfg->n_stored_samples);
        float *cw = plan_alloc(p, -1, FT_MEM_SCRATCH, k);
        float *eb = plan_alloc(p, -1, FT_MEM_SCRATCH, k);
        if (ctx != NULL) {
            ctx->input = input != NULL ? input + (int64_t)pl * in_c : NULL;
            ctx->stored_x = sx;
            ctx->stored_y = sy;
            ctx->class_w = cw;
            ctx->exp_buf = eb;
            ctx->fixed_end = p->off;
        }
    }

    /* Planned part: gradients and momentum. */
    for (i = 0; i < n; ++i) {
        float *gw = NULL, *gb = NULL, *vw = NULL, *vb = NULL;
        if (tr[i]) {
            gw = plan_alloc(p, i, FT_MEM_GRADIENTS, ft_weight_elems(&l[i]));
            gb = plan_alloc(p, i, FT_MEM_GRADIENTS, ft_bias_elems(&l[i]));
            if (cfg->momentum != 0.0f) {
                vw = plan_alloc(p, i, FT_MEM_OPTIMIZER, ft_weight_elems(&l[i]));
                vb = plan_alloc(p, i, FT_MEM_OPTIMIZER, ft_bias_elems(&l[i]));
            }
        }
        if (L != NULL) {
            L[i].trainable = tr[i];
            L[i].gw = gw;
            L[i].gb = gb;
            L[i].vw = vw;
            L[i].vb = vb;
        }
    }

    /* Forward buffers: dedicated (kept or padded) first, then the ping-pong sizes. */
    cur = BUF_INPUT;
    for (i = 0; i < n; ++i) {
        int32_t *idx = NULL;
        if (l[i].kind == FT_LAYER_MAXPOOL1D && s >= 0 && i > s) {
            idx = plan_alloc(p, i, FT_MEM_ACTIVATIONS, out_elems(&l[i]));
        }
        if (L != NULL) {
            L[i].idx = idx;
        }
        if (l[i].kind == FT_LAYER_RELU) {
            if (L != NULL) {
                L[i].out = i > 0 ? L[i - 1].out : ctx->input;
                L[i].pad_l = i > 0 ? L[i - 1].pad_l : 0;
                L[i].pad_r = i > 0 ? L[i - 1].pad_r : 0;
            }
            continue;
        }
        output_pads(l, n, i, &pl, &pr);
        if (L != NULL) {
            L[i].pad_l = pl;
            L[i].pad_r = pr;
            L[i].out = NULL;
        }
        if (keep_output(l, n, tr, s, i) || pl + pr > 0) {
            int32_t cat = keep_output(l, n, tr, s, i) ? FT_MEM_ACTIVATIONS : FT_MEM_SCRATCH;
            float *buf = plan_alloc(p, i, cat, ((int64_t)l[i].out_t + pl + pr) * l[i].out_c);
            if (L != NULL) {
                L[i].out = buf != NULL ? buf + (int64_t)pl * l[i].out_c : NULL;
            }
            cur = i;
        } else {
            cur = cur == BUF_PING ? BUF_PONG : BUF_PING;
            if (cur == BUF_PING) {
                ping_n = ping_n > out_elems(&l[i]) ? ping_n : out_elems(&l[i]);
            } else {
                pong_n = pong_n > out_elems(&l[i]) ? pong_n : out_elems(&l[i]);
            }
        }
    }
    ping = plan_alloc(p, -1, FT_MEM_SCRATCH, ping_n);
    pong = plan_alloc(p, -1, FT_MEM_SCRATCH, pong_n);
    if (L != NULL) {
        /* Second walk: hand the ping-pong buffers to the layers that use them. */
        cur = BUF_INPUT;
        for (i = 0; i < n; ++i) {
            if (l[i].kind == FT_LAYER_RELU) {
                continue;
            }
            if (L[i].out != NULL) { /* dedicated buffer placed by the first walk */
                cur = i;
                continue;
            }
            cur = cur == BUF_PING ? BUF_PONG : BUF_PING;
            L[i].out = cur == BUF_PING ? ping : pong;
        }
        for (i = 0; i < n; ++i) {
            if (l[i].kind == FT_LAYER_RELU) {
                L[i].out = i > 0 ? L[i - 1].out : ctx->input;
            }
        }
    }

    /* Delta buffers: A holds dL/dlogits, then the layers alternate A and B. */
    if (s >= 0) {
        int32_t in_a = 1;
        da_n = k;
        for (i = n - 1; i > s; --i) {
            int64_t need = (int64_t)l[i].in_c * l[i].in_t;
            if (l[i].kind == FT_LAYER_RELU) {
                continue;
            }
            if (l[i].kind == FT_LAYER_CONV1D) {
                need = (int64_t)l[i].in_c * ((int64_t)l[i].in_t + l[i].pad_left + l[i].pad_right);
            }
            in_a = !in_a;
            if (in_a) {
                da_n = da_n > need ? da_n : need;
            } else {
                db_n = db_n > need ? db_n : need;
            }
        }
    }
    da = plan_alloc(p, -1, FT_MEM_DELTAS, da_n);
    db = plan_alloc(p, -1, FT_MEM_DELTAS, db_n);
    if (L != NULL) {
        for (i = 0; i < n; ++i) {
            L[i].dout = NULL;
            L[i].din_base = NULL;
        }
        if (s >= 0) {
            int32_t in_a = 1;
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
        ctx->first_trainable = s;
    }
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

ft_status ft_context_get_buffer_size(const ft_layer_desc *layers, int32_t n_layers,
                                     const ft_train_config *cfg, const uint8_t *trainable,
                                     int64_t *arena_bytes, int64_t *control_bytes)
{
    ft_planner p;
    ft_status st;
    if (arena_bytes == NULL) {
        return FT_ERR_NULL;
    }
    st = check_config(layers, n_layers, cfg, trainable);
    if (st != FT_OK) {
        return st;
    }
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

/* Plans the arena for cfg/trainable; on failure the context is left unchanged. */
static ft_status replan(ft_context *ctx, const ft_train_config *cfg, const uint8_t *trainable)
{
    const int32_t n = ctx->n_layers;
    const int64_t rows = (int64_t)(n + 1) * FT_MEM_COUNT;
    ft_planner p;
    int64_t need, r;
    ft_status st = check_config(ctx->descs, n, cfg, trainable);
    if (st != FT_OK) {
        return st;
    }
    p.base = NULL;
    p.off = ctx->control_bytes;
    p.cap = 0;
    p.n_layers = n;
    p.mem = NULL;
    need = plan_arena(&p, ctx->descs, n, cfg, trainable, NULL);
    if (need > ctx->capacity) {
        return FT_ERR_ARENA_TOO_SMALL;
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
    return FT_OK;
}

ft_status ft_context_init(void *arena, int64_t arena_bytes, const ft_layer_desc *layers,
                          int32_t n_layers, const ft_train_config *cfg,
                          const uint8_t *trainable, ft_context **out)
{
    ft_context *ctx;
    uint8_t *a = arena;
    int64_t ctl, need, off;
    int32_t i;
    ft_status st;

    if (arena == NULL || out == NULL) {
        return FT_ERR_NULL;
    }
    *out = NULL;
    if ((uintptr_t)arena % 8 != 0 || arena_bytes < 0) {
        return FT_ERR_ARG;
    }
    st = ft_context_get_buffer_size(layers, n_layers, cfg, trainable, &need, &ctl);
    if (st != FT_OK) {
        return st;
    }
    if (need > arena_bytes) {
        return FT_ERR_ARENA_TOO_SMALL;
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
    st = replan(ctx, cfg, trainable);
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

ft_status ft_context_configure(ft_context *ctx, const ft_train_config *cfg,
                               const uint8_t *trainable)
{
    if (!ft_valid_ctx(ctx) || cfg == NULL || trainable == NULL) {
        return FT_ERR_NULL;
    }
    if (cfg->n_stored_samples != ctx->cfg.n_stored_samples) {
        return FT_ERR_ARG;
    }
    return replan(ctx, cfg, trainable);
}

/* ---------------------------------------------------------------------------------- */
/* Parameters                                                                           */

static ft_status param_slot(const ft_context *ctx, int32_t layer, int32_t param, float **ptr,
                            int64_t *n)
{
    const ft_layer *L;
    if (layer < 0 || layer >= ctx->n_layers) {
        return FT_ERR_ARG;
    }
    L = &ctx->layers[layer];
    if (!is_trainable_kind(L->d.kind)) {
        return FT_ERR_ARG;
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
            return FT_ERR_ARG;
        }
        *ptr = param == FT_PARAM_RUNNING_MEAN ? L->mean : L->var;
        *n = L->d.in_c;
        return FT_OK;
    default:
        return FT_ERR_ARG;
    }
}

/* PyTorch [F, C, K] (dense [M, N]: K = 1) <-> internal [K, C, F]. */
static void weight_dims(const ft_layer_desc *d, int32_t *f, int32_t *c, int32_t *k)
{
    *f = d->out_c;
    *c = d->in_c;
    *k = d->kind == FT_LAYER_CONV1D ? d->kernel : 1;
}

ft_status ft_set_param(ft_context *ctx, int32_t layer, int32_t param, const float *src,
                       int64_t n)
{
    float *dst;
    int64_t want, q;
    ft_status st;
    if (!ft_valid_ctx(ctx) || src == NULL) {
        return FT_ERR_NULL;
    }
    st = param_slot(ctx, layer, param, &dst, &want);
    if (st != FT_OK) {
        return st;
    }
    if (n != want) {
        return FT_ERR_SHAPE;
    }
    if (param == FT_PARAM_WEIGHT && ctx->layers[layer].d.kind != FT_LAYER_BATCHNORM1D) {
        int32_t f, c, k, fi, ci, ki;
        weight_dims(&ctx->layers[layer].d, &f, &c, &k);
        for (fi = 0; fi < f; ++fi) {
            for (ci = 0; ci < c; ++ci) {
                for (ki = 0; ki < k; ++ki) {
                    dst[((int64_t)ki * c + ci) * f + fi] = src[((int64_t)fi * c + ci) * k + ki];
                }
            }
        }
        return FT_OK;
    }
    if (param == FT_PARAM_RUNNING_VAR) {
        for (q = 0; q < n; ++q) {
            if (!(src[q] >= 0.0f)) {
                return FT_ERR_ARG;
            }
        }
    }
    memcpy(dst, src, (size_t)n * sizeof(float));
    return FT_OK;
}

ft_status ft_get_param(const ft_context *ctx, int32_t layer, int32_t param, float *dst,
                       int64_t n)
{
    float *src;
    int64_t want;
    ft_status st;
    if (!ft_valid_ctx(ctx) || dst == NULL) {
        return FT_ERR_NULL;
    }
    st = param_slot(ctx, layer, param, &src, &want);
    if (st != FT_OK) {
        return st;
    }
    if (n != want) {
        return FT_ERR_SHAPE;
    }
    if (param == FT_PARAM_WEIGHT && ctx->layers[layer].d.kind != FT_LAYER_BATCHNORM1D) {
        int32_t f, c, k, fi, ci, ki;
        weight_dims(&ctx->layers[layer].d, &f, &c, &k);
        for (fi = 0; fi < f; ++fi) {
            for (ci = 0; ci < c; ++ci) {
                for (ki = 0; ki < k; ++ki) {
                    dst[((int64_t)fi * c + ci) * k + ki] = src[((int64_t)ki * c + ci) * f + fi];
                }
            }
        }
        return FT_OK;
    }
    memcpy(dst, src, (size_t)n * sizeof(float));
    return FT_OK;
}

ft_status ft_set_class_weights(ft_context *ctx, const float *w, int32_t n_classes)
{
    int32_t i;
    if (!ft_valid_ctx(ctx) || w == NULL) {
        return FT_ERR_NULL;
    }
    if (n_classes != ctx->n_classes) {
        return FT_ERR_SHAPE;
    }
    for (i = 0; i < n_classes; ++i) {
        if (!(w[i] >= 0.0f) || !isfinite(w[i])) {
            return FT_ERR_ARG;
        }
    }
    memcpy(ctx->class_w, w, (size_t)n_classes * sizeof(float));
    return FT_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Counters and memory                                                                  */

ft_status ft_get_counts(const ft_context *ctx, ft_op_counts *out, int64_t n_out)
{
    int64_t rows;
    if (!ft_valid_ctx(ctx) || out == NULL) {
        return FT_ERR_NULL;
    }
    rows = (int64_t)(ctx->n_layers + 1) * FT_PHASE_COUNT;
    if (n_out != rows) {
        return FT_ERR_SHAPE;
    }
    memcpy(out, ctx->counts, (size_t)rows * sizeof(ft_op_counts));
    return FT_OK;
}

ft_status ft_reset_counts(ft_context *ctx)
{
    if (!ft_valid_ctx(ctx)) {
        return FT_ERR_NULL;
    }
    memset(ctx->counts, 0,
           (size_t)(ctx->n_layers + 1) * FT_PHASE_COUNT * sizeof(ft_op_counts));
    return FT_OK;
}

ft_status ft_get_memory(const ft_context *ctx, int64_t *peak, int64_t n_out,
                        int64_t *control_bytes, int64_t *capacity_bytes)
{
    int64_t rows;
    if (!ft_valid_ctx(ctx) || peak == NULL) {
        return FT_ERR_NULL;
    }
    rows = (int64_t)(ctx->n_layers + 1) * FT_MEM_COUNT;
    if (n_out != rows) {
        return FT_ERR_SHAPE;
    }
    memcpy(peak, ctx->mem_peak, (size_t)rows * sizeof(int64_t));
    if (control_bytes != NULL) {
        *control_bytes = ctx->control_bytes;
    }
    if (capacity_bytes != NULL) {
        *capacity_bytes = ctx->capacity;
    }
    return FT_OK;
}

ft_status ft_get_n_layers(const ft_context *ctx, int32_t *n_layers)
{
    if (!ft_valid_ctx(ctx) || n_layers == NULL) {
        return FT_ERR_NULL;
    }
    *n_layers = ctx->n_layers;
    return FT_OK;
}
