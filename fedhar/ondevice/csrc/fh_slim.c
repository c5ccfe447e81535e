/*
 * fh_slim.c - width-sliced float32 and int8 inference and the score-margin policy.
 *
 * Activations inside are channel-major [C, T] per sample, like the API. Conv uses "same"
 * padding with pad_left = (K - 1) / 2; taps that fall in the padding are skipped, not
 * multiplied by zero.
 *
 * Counting rules, per sample (e = element bytes: 4 float32, 1 int8; T = input length of the
 * block, To = T / pool, taps = executed in-bounds multiply-accumulates):
 *   conv f32:   macs = taps + c_out T (folded BN); cmps = c_out T (ReLU);
 *               bytes = 4 (2 taps + 2 c_out + c_out T)     (x and w per tap; scale, shift; y)
 *   conv s8:    macs = taps; adds = 2 c_out T (bias, rounding); muls = c_out T (requant);
 *               cmps = 2 c_out T (clamp to [0, 127]); bytes = 2 taps + 12 c_out + c_out T
 *   maxpool:    cmps = c To (pool - 1); bytes = e (c To pool + c To)
 *   gap f32:    adds = c (T - 1); muls = c; divs = 1; bytes = 4 (c T + c)
 *   gap s8:     adds = c (T - 1) + c (rounding); divs = c; bytes = c T + c
 *   dense f32:  macs = n_in n_out; adds = n_out; cmps = n_out if ReLU;
 *               bytes = 4 (2 n_in n_out + 2 n_out)
 *   dense s8:   macs = n_in n_out; adds = n_out (bias); hidden: muls, adds, 2 cmps per output,
 *               bytes = 2 n_in n_out + 12 n_out + n_out; last: muls = n_out,
 *               bytes = 2 n_in n_out + 8 n_out + 4 n_out
 *   policy:     cmps = 1 + 2 (K - 2) (top two logits) + 1 (threshold); adds = K (z - z1)
 *               + (K - 1) (sum) + 1 (1 - e2); exps = K; divs = 1;
 *               bytes = 4 K (logits) + 4 (margin) + 4 (argmax) + 1 (easy flag)
 */
#include "fh_slim.h"
#include "ft_check.h"
#include "ft_emu.h"

#include <math.h>
#include <stddef.h>

#define FH_SLIM_MAX_DIM 1048576
#define FH_SLIM_MAX_LAYERS 64

/* ---------------------------------------------------------------------------------------- */
/* One network of either element type                                                        */

/*
 * A float32 or an int8 network (exactly one of f32 and s8 is set), seen through what both
 * share: the sizes, the layer walk and the activation element size. Validation, buffer sizing
 * and the per-sample walk are written once against it; only the layer kernels are typed.
 */
typedef struct {
    const fh_slim_net_f32 *f32;
    const fh_slim_net_s8 *s8;
    const fh_slim_net_dims *dims; /* NULL when the net pointer is NULL */
    int32_t elem_bytes;           /* bytes of one activation: 4 (float32) or 1 (int8) */
} fh_slim_net;

static fh_slim_net fh_slim_net_of(const fh_slim_net_f32 *f32, const fh_slim_net_s8 *s8)
{
    fh_slim_net v;
    v.f32 = f32;
    v.s8 = s8;
    v.dims = f32 != NULL ? &f32->dims : (s8 != NULL ? &s8->dims : NULL);
    v.elem_bytes = f32 != NULL ? (int32_t)sizeof(float) : (int32_t)sizeof(int8_t);
    return v;
}

static const fh_slim_conv_dims *fh_slim_conv_dims_at(const fh_slim_net *v, int32_t i)
{
    return v->f32 != NULL ? &v->f32->conv[i].dims : &v->s8->conv[i].dims;
}

static const fh_slim_dense_dims *fh_slim_dense_dims_at(const fh_slim_net *v, int32_t i)
{
    return v->f32 != NULL ? &v->f32->dense[i].dims : &v->s8->dense[i].dims;
}

/* ---------------------------------------------------------------------------------------- */
/* Validation                                                                                */

/* FT_ERR_SHAPE unless field name (value v) of layer i of argument 1 (net) is in [lo, hi]. */
static ft_status fh_slim_dim(ft_error *err, const char *name, int32_t i, int64_t v, int64_t lo,
                             int64_t hi)
{
    return ft_in_range(err, FT_ERR_SHAPE, 1, name, i, v, lo, hi);
}

/* Checks conv block i fed c channels of length t; writes the pooled output length. */
static ft_status fh_slim_check_conv(const fh_slim_conv_dims *d, int32_t i, int32_t c, int32_t t,
                                    int32_t *t_out, ft_error *err)
{
    const int32_t m = FH_SLIM_MAX_DIM;
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_in_full", i, d->c_in_full, 1, m));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_out_full", i, d->c_out_full, 1, m));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_in", i, d->c_in, c, c));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_in", i, d->c_in, 1, d->c_in_full));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_out", i, d->c_out, 1, d->c_out_full));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.c_out", i, d->c_out, 1, m / t));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.kernel", i, d->kernel, 1, m));
    FT_TRY(fh_slim_dim(err, "net->conv[].dims.pool", i, d->pool, 1, t));
    *t_out = t / d->pool;
    return FT_OK;
}

/* Checks dense layer i (the last one when last) fed n_in features. */
static ft_status fh_slim_check_dense(const fh_slim_dense_dims *d, int32_t i, int32_t n_in,
                                     int32_t last, ft_error *err)
{
    const int32_t m = FH_SLIM_MAX_DIM;
    FT_TRY(fh_slim_dim(err, "net->dense[].dims.n_in_full", i, d->n_in_full, 1, m));
    FT_TRY(fh_slim_dim(err, "net->dense[].dims.n_out_full", i, d->n_out_full, 1, m));
    FT_TRY(fh_slim_dim(err, "net->dense[].dims.n_in", i, d->n_in, n_in, n_in));
    FT_TRY(fh_slim_dim(err, "net->dense[].dims.n_in", i, d->n_in, 1, d->n_in_full));
    FT_TRY(fh_slim_dim(err, "net->dense[].dims.n_out", i, d->n_out, 1, d->n_out_full));
    return fh_slim_dim(err, "net->dense[].dims.relu", i, d->relu, last ? 0 : 1, last ? 0 : 1);
}

/* The name of the first tensor a layer lacks, or NULL. */
static const char *fh_slim_conv_f32_missing(const fh_slim_conv_f32 *l)
{
    return l->weight == NULL  ? "net->conv[].weight"
           : l->scale == NULL ? "net->conv[].scale"
           : l->shift == NULL ? "net->conv[].shift"
                              : NULL;
}

static const char *fh_slim_conv_s8_missing(const fh_slim_conv_s8 *l)
{
    return l->weight == NULL   ? "net->conv[].weight"
           : l->bias == NULL   ? "net->conv[].bias"
           : l->mult == NULL   ? "net->conv[].mult"
           : l->rshift == NULL ? "net->conv[].rshift"
                               : NULL;
}

static const char *fh_slim_dense_f32_missing(const fh_slim_dense_f32 *l)
{
    return l->weight == NULL ? "net->dense[].weight"
           : l->bias == NULL ? "net->dense[].bias"
                             : NULL;
}

/* Hidden int8 dense layers requantize (mult, rshift); the last one scales logits. */
static const char *fh_slim_dense_s8_missing(const fh_slim_dense_s8 *l, int32_t last)
{
    if (l->weight == NULL || l->bias == NULL) {
        return l->weight == NULL ? "net->dense[].weight" : "net->dense[].bias";
    }
    if (last) {
        return l->logit_scale == NULL ? "net->dense[].logit_scale" : NULL;
    }
    return l->mult == NULL     ? "net->dense[].mult"
           : l->rshift == NULL ? "net->dense[].rshift"
                               : NULL;
}

/* FT_ERR_NULL naming the tensor, its layer as index, if a layer of v lacks one of its tensors. */
static ft_status fh_slim_check_tensors(const fh_slim_net *v, ft_error *err)
{
    const fh_slim_net_dims *nd = v->dims;
    const char *missing;
    int32_t i;
    for (i = 0; i < nd->n_conv; ++i) {
        missing = v->f32 != NULL ? fh_slim_conv_f32_missing(&v->f32->conv[i])
                                 : fh_slim_conv_s8_missing(&v->s8->conv[i]);
        if (missing != NULL) {
            return ft_fail(err, FT_ERR_NULL, 1, missing, i, NAN, NAN, NAN, 0);
        }
    }
    for (i = 0; i < nd->n_dense; ++i) {
        missing = v->f32 != NULL
                      ? fh_slim_dense_f32_missing(&v->f32->dense[i])
                      : fh_slim_dense_s8_missing(&v->s8->dense[i], i == nd->n_dense - 1);
        if (missing != NULL) {
            return ft_fail(err, FT_ERR_NULL, 1, missing, i, NAN, NAN, NAN, 0);
        }
    }
    return FT_OK;
}

/* Validates the layer chain; writes the largest activation (elements) and the class count. */
static ft_status fh_slim_check_chain(const fh_slim_net *v, int32_t *max_elems,
                                     int32_t *n_classes, ft_error *err)
{
    const fh_slim_net_dims *nd = v->dims;
    int32_t c = nd->in_channels, t = nd->in_length, i, t_out = 0;
    int64_t biggest = 1;
    FT_TRY(fh_slim_dim(err, "net->dims.in_channels", -1, nd->in_channels, 1, FH_SLIM_MAX_DIM));
    FT_TRY(fh_slim_dim(err, "net->dims.in_length", -1, nd->in_length, 1, FH_SLIM_MAX_DIM));
    for (i = 0; i < nd->n_conv; ++i) {
        const fh_slim_conv_dims *d = fh_slim_conv_dims_at(v, i);
        FT_TRY(fh_slim_check_conv(d, i, c, t, &t_out, err));
        if ((int64_t)d->c_out * t > biggest) {
            biggest = (int64_t)d->c_out * t;
        }
        c = d->c_out;
        t = t_out;
    }
    for (i = 0; i < nd->n_dense; ++i) {
        const fh_slim_dense_dims *d = fh_slim_dense_dims_at(v, i);
        FT_TRY(fh_slim_check_dense(d, i, c, i == nd->n_dense - 1, err));
        c = d->n_out;
        if (c > biggest) {
            biggest = c;
        }
    }
    *max_elems = (int32_t)biggest;
    *n_classes = c;
    return FT_OK;
}

/* Validates pointers, layer counts and the layer chain of v, in that order. */
static ft_status fh_slim_check(const fh_slim_net *v, int32_t *max_elems, int32_t *n_classes,
                               ft_error *err)
{
    const fh_slim_net_dims *nd = v->dims;
    const void *conv = v->f32 != NULL ? (const void *)v->f32->conv
                       : v->s8 != NULL ? (const void *)v->s8->conv
                                       : NULL;
    const void *dense = v->f32 != NULL ? (const void *)v->f32->dense
                        : v->s8 != NULL ? (const void *)v->s8->dense
                                        : NULL;
    FT_TRY(ft_need(err, nd, 1, "net"));
    FT_TRY(ft_need(err, conv, 1, "net->conv"));
    FT_TRY(ft_need(err, dense, 1, "net->dense"));
    FT_TRY(fh_slim_dim(err, "net->dims.n_conv", -1, nd->n_conv, 1, FH_SLIM_MAX_LAYERS));
    FT_TRY(fh_slim_dim(err, "net->dims.n_dense", -1, nd->n_dense, 1, FH_SLIM_MAX_LAYERS));
    FT_TRY(fh_slim_check_tensors(v, err));
    return fh_slim_check_chain(v, max_elems, n_classes, err);
}

/* FT_ERR_ARG unless every right shift of the n outputs of a layer (field name, layer i) is in
 * 1..62. */
static ft_status fh_slim_check_rshift(const int32_t *rshift, int32_t n, const char *name,
                                      int32_t i, ft_error *err)
{
    int32_t j;
    for (j = 0; j < n; ++j) {
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, name, i, rshift[j], 1, 62));
    }
    return FT_OK;
}

/* The requantization shifts of every int8 conv block and hidden dense layer. */
static ft_status fh_slim_check_requant(const fh_slim_net_s8 *net, ft_error *err)
{
    int32_t i;
    for (i = 0; i < net->dims.n_conv; ++i) {
        FT_TRY(fh_slim_check_rshift(net->conv[i].rshift, net->conv[i].dims.c_out,
                                    "net->conv[].rshift", i, err));
    }
    for (i = 0; i + 1 < net->dims.n_dense; ++i) {
        FT_TRY(fh_slim_check_rshift(net->dense[i].rshift, net->dense[i].dims.n_out,
                                    "net->dense[].rshift", i, err));
    }
    return FT_OK;
}

/* Two ping-pong activation buffers of the largest activation. */
static ft_status fh_slim_buffer_size(const fh_slim_net *v, int32_t *bytes, ft_error *err)
{
    int32_t max_elems = 0, n_classes = 0;
    ft_ok(err);
    FT_TRY(ft_need(err, bytes, 2, "bytes"));
    FT_TRY(fh_slim_check(v, &max_elems, &n_classes, err));
    *bytes = 2 * max_elems * v->elem_bytes;
    return FT_OK;
}

ft_status fh_slim_f32_get_buffer_size(const fh_slim_net_f32 *net, int32_t *bytes,
                                      ft_error *err)
{
    const fh_slim_net v = fh_slim_net_of(net, NULL);
    return fh_slim_buffer_size(&v, bytes, err);
}

ft_status fh_slim_s8_get_buffer_size(const fh_slim_net_s8 *net, int32_t *bytes,
                                     ft_error *err)
{
    const fh_slim_net v = fh_slim_net_of(NULL, net);
    return fh_slim_buffer_size(&v, bytes, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Kernels                                                                                   */

/* Each layer kernel is its own function: inlined into the network walk, GCC for a Cortex-M4
 * runs out of registers and spills the int8 accumulator and pointers of the inner loop to the
 * stack (10 instructions per tap instead of 5). */
#if defined(__GNUC__)
#define FH_SLIM_KERNEL static __attribute__((noinline))
#else
#define FH_SLIM_KERNEL static
#endif

/* The in-bounds part of the window of output step o of a same-padded conv (pad_left =
 * (k - 1) / 2) over length t: kernel taps lo .. lo + n - 1 read input steps x0 .. x0 + n - 1. */
typedef struct {
    int32_t lo; /* first in-bounds tap */
    int32_t x0; /* input step that tap lo reads */
    int32_t n;  /* in-bounds taps, >= 1 */
} fh_slim_window;

static fh_slim_window fh_slim_window_at(int32_t o, int32_t t, int32_t k)
{
    const int32_t start = o - (k - 1) / 2; /* input step of tap 0, may be < 0 */
    fh_slim_window w;
    w.lo = start < 0 ? -start : 0;
    w.n = (start + k > t ? t - start : k) - w.lo;
    w.x0 = start + w.lo;
    return w;
}

/* Geometry of one conv block over input length t, computed once by the network walk and passed
 * by value to the typed kernels (their loop bounds and strides). */
typedef struct {
    int32_t c_in, c_out; /* active channels */
    int32_t k, t;        /* kernel and input (= output) length */
    int64_t row;         /* stride of one output channel's weights: c_in_full * k */
    int64_t outs;        /* outputs before pooling: c_out * t */
    int64_t taps;        /* in-bounds multiply-accumulates of the block */
} fh_slim_conv_geom;

static fh_slim_conv_geom fh_slim_conv_geom_of(const fh_slim_conv_dims *d, int32_t t)
{
    fh_slim_conv_geom g;
    int64_t per_pair = 0;
    int32_t o;
    for (o = 0; o < t; ++o) {
        per_pair += fh_slim_window_at(o, t, d->kernel).n;
    }
    g.c_in = d->c_in;
    g.c_out = d->c_out;
    g.k = d->kernel;
    g.t = t;
    g.row = (int64_t)d->c_in_full * d->kernel;
    g.outs = (int64_t)d->c_out * t;
    g.taps = per_pair * d->c_in * d->c_out;
    return g;
}

/* Max-pool (window and stride p) of c channels of length t, in place, elements of e bytes
 * (float32 or int8). Output index ch * to + o never exceeds the first input index it reads. */
FH_SLIM_KERNEL void fh_slim_maxpool(void *buf, int32_t e, int32_t c, int32_t t, int32_t p,
                            ft_op_counts *ops)
{
    const int32_t to = t / p;
    float *f32 = buf;
    int8_t *s8 = buf;
    int32_t ch, o, j;
    for (ch = 0; ch < c; ++ch) {
        for (o = 0; o < to; ++o) {
            const int64_t src = (int64_t)ch * t + (int64_t)o * p, dst = (int64_t)ch * to + o;
            if (e == (int32_t)sizeof(float)) {
                float m = f32[src];
                for (j = 1; j < p; ++j) {
                    m = f32[src + j] > m ? f32[src + j] : m;
                }
                f32[dst] = m;
            } else {
                int8_t m = s8[src];
                for (j = 1; j < p; ++j) {
                    m = s8[src + j] > m ? s8[src + j] : m;
                }
                s8[dst] = m;
            }
        }
    }
    ops->cmps += (int64_t)c * to * (p - 1);
    ops->bytes_moved += e * ((int64_t)c * to * p + (int64_t)c * to);
}

FH_SLIM_KERNEL void fh_slim_conv_f32_run(const fh_slim_conv_f32 *l, fh_slim_conv_geom g, const float *x,
                                 float *y, ft_op_counts *ops)
{
    int32_t f, c, o, j;
    for (f = 0; f < g.c_out; ++f) {
        const float *wf = l->weight + (int64_t)f * g.row;
        const float scale = l->scale[f], shift = l->shift[f];
        for (o = 0; o < g.t; ++o) {
            const fh_slim_window win = fh_slim_window_at(o, g.t, g.k);
            float acc = 0.0f;
            for (c = 0; c < g.c_in; ++c) {
                const float *wc = wf + (int64_t)c * g.k + win.lo;
                const float *xc = x + (int64_t)c * g.t + win.x0;
                for (j = 0; j < win.n; ++j) {
                    acc += wc[j] * xc[j];
                }
            }
            acc = scale * acc + shift;
            y[(int64_t)f * g.t + o] = acc > 0.0f ? acc : 0.0f;
        }
    }
    ops->macs += g.taps + g.outs;
    ops->cmps += g.outs;
    ops->bytes_moved += 4 * (2 * g.taps + 2 * (int64_t)g.c_out + g.outs);
}

/* Global average pool [c, t] -> [c]. */
FH_SLIM_KERNEL void fh_slim_gap_f32(const float *x, int32_t c, int32_t t, float *y, ft_op_counts *ops)
{
    const float inv_t = 1.0f / (float)t;
    int32_t f, j;
    for (f = 0; f < c; ++f) {
        float sum = 0.0f;
        for (j = 0; j < t; ++j) {
            sum += x[(int64_t)f * t + j];
        }
        y[f] = sum * inv_t;
    }
    ops->adds += (int64_t)c * (t - 1);
    ops->muls += c;
    ops->divs += 1;
    ops->bytes_moved += 4 * ((int64_t)c * t + c);
}

FH_SLIM_KERNEL void fh_slim_dense_f32_run(const fh_slim_dense_f32 *l, const float *x, float *y,
                                  ft_op_counts *ops)
{
    const fh_slim_dense_dims *d = &l->dims;
    int32_t f, j;
    for (f = 0; f < d->n_out; ++f) {
        const float *w = l->weight + (int64_t)f * d->n_in_full;
        float acc = l->bias[f];
        for (j = 0; j < d->n_in; ++j) {
            acc += w[j] * x[j];
        }
        y[f] = (d->relu && acc < 0.0f) ? 0.0f : acc;
    }
    ops->macs += (int64_t)d->n_in * d->n_out;
    ops->adds += d->n_out;
    ops->cmps += d->relu ? d->n_out : 0;
    ops->bytes_moved += 4 * (2 * (int64_t)d->n_in * d->n_out + 2 * (int64_t)d->n_out);
}

/* round(acc * mult * 2^-rshift), half away from zero, clamped to [0, 127] (ReLU). */
static int8_t fh_slim_requant_relu(int32_t acc, int32_t mult, int32_t rshift)
{
    const int64_t prod = (int64_t)acc * (int64_t)mult;
    const int64_t half = (int64_t)1 << (rshift - 1);
    const int64_t mag = ((prod < 0 ? -prod : prod) + half) >> rshift;
    const int64_t v = prod < 0 ? -mag : mag;
    return (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
}

FH_SLIM_KERNEL void fh_slim_conv_s8_run(const fh_slim_conv_s8 *l, fh_slim_conv_geom g, const int8_t *x,
                                int8_t *y, ft_op_counts *ops)
{
    int32_t f, c, o, j;
    for (f = 0; f < g.c_out; ++f) {
        const int8_t *wf = l->weight + (int64_t)f * g.row;
        for (o = 0; o < g.t; ++o) {
            const fh_slim_window win = fh_slim_window_at(o, g.t, g.k);
            int32_t acc = l->bias[f];
            for (c = 0; c < g.c_in; ++c) {
                const int8_t *wc = wf + (int64_t)c * g.k + win.lo;
                const int8_t *xc = x + (int64_t)c * g.t + win.x0;
                for (j = 0; j < win.n; ++j) {
                    acc += (int32_t)wc[j] * (int32_t)xc[j];
                }
            }
            y[(int64_t)f * g.t + o] = fh_slim_requant_relu(acc, l->mult[f], l->rshift[f]);
        }
    }
    ops->macs += g.taps;
    ops->adds += 2 * g.outs;
    ops->muls += g.outs;
    ops->cmps += 2 * g.outs;
    ops->bytes_moved += 2 * g.taps + 12 * (int64_t)g.c_out + g.outs;
}

/* Global average pool [c, t] -> [c] of ReLU outputs (>= 0): rounding division by t. */
FH_SLIM_KERNEL void fh_slim_gap_s8(const int8_t *x, int32_t c, int32_t t, int8_t *y, ft_op_counts *ops)
{
    int32_t f, j;
    for (f = 0; f < c; ++f) {
        int32_t sum = 0;
        for (j = 0; j < t; ++j) {
            sum += x[(int64_t)f * t + j];
        }
        y[f] = (int8_t)((sum + t / 2) / t);
    }
    ops->adds += (int64_t)c * (t - 1) + c;
    ops->divs += c;
    ops->bytes_moved += (int64_t)c * t + c;
}

/* Hidden layer (relu): int8 activations into y. Last layer: float logits into y. */
FH_SLIM_KERNEL void fh_slim_dense_s8_run(const fh_slim_dense_s8 *l, const int8_t *x, void *y,
                                 ft_op_counts *ops)
{
    const fh_slim_dense_dims *d = &l->dims;
    int8_t *hidden = y;
    float *logits = y;
    int32_t f, j;
    for (f = 0; f < d->n_out; ++f) {
        const int8_t *w = l->weight + (int64_t)f * d->n_in_full;
        int32_t acc = l->bias[f];
        for (j = 0; j < d->n_in; ++j) {
            acc += (int32_t)w[j] * (int32_t)x[j];
        }
        if (d->relu) {
            hidden[f] = fh_slim_requant_relu(acc, l->mult[f], l->rshift[f]);
        } else {
            logits[f] = (float)acc * l->logit_scale[f];
        }
    }
    ops->macs += (int64_t)d->n_in * d->n_out;
    ops->adds += d->n_out;
    ops->muls += d->n_out;
    if (d->relu) {
        ops->adds += d->n_out;
        ops->cmps += 2 * (int64_t)d->n_out;
        ops->bytes_moved += 2 * (int64_t)d->n_in * d->n_out + 13 * (int64_t)d->n_out;
    } else {
        ops->bytes_moved += 2 * (int64_t)d->n_in * d->n_out + 12 * (int64_t)d->n_out;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The network walk, shared by both element types                                           */

/*
 * One sample x [in_channels, in_length] to logits [n_classes]. The conv blocks alternate
 * between the scratch halves a and b (block i writes a when i is even), the pool runs in place,
 * GAP writes the next half, the dense layers alternate again and the last writes the logits.
 */
static void fh_slim_sample(const fh_slim_net *v, const void *x, float *logits, void *a, void *b,
                           ft_op_counts *ops)
{
    const fh_slim_net_dims *nd = v->dims;
    const void *in = x;
    void *dst;
    int32_t t = nd->in_length, c = 0, i;
    for (i = 0; i < nd->n_conv; ++i) {
        const fh_slim_conv_dims *d = fh_slim_conv_dims_at(v, i);
        const fh_slim_conv_geom g = fh_slim_conv_geom_of(d, t);
        dst = i % 2 == 0 ? a : b;
        FT_EMU_MARK(i, 0);
        if (v->f32 != NULL) {
            fh_slim_conv_f32_run(&v->f32->conv[i], g, in, dst, ops);
        } else {
            fh_slim_conv_s8_run(&v->s8->conv[i], g, in, dst, ops);
        }
        if (d->pool > 1) {
            FT_EMU_MARK(i, 1);
            fh_slim_maxpool(dst, v->elem_bytes, d->c_out, t, d->pool, ops);
        }
        FT_EMU_GLUE();
        t /= d->pool;
        c = d->c_out;
        in = dst;
    }
    dst = nd->n_conv % 2 == 0 ? a : b;
    FT_EMU_MARK(nd->n_conv, 0);
    if (v->f32 != NULL) {
        fh_slim_gap_f32(in, c, t, dst, ops);
    } else {
        fh_slim_gap_s8(in, c, t, dst, ops);
    }
    FT_EMU_GLUE();
    in = dst;
    for (i = 0; i < nd->n_dense; ++i) {
        dst = i == nd->n_dense - 1 ? (void *)logits : (in == a ? b : a);
        FT_EMU_MARK(nd->n_conv + 1 + i, 0);
        if (v->f32 != NULL) {
            fh_slim_dense_f32_run(&v->f32->dense[i], in, dst, ops);
        } else {
            fh_slim_dense_s8_run(&v->s8->dense[i], in, dst, ops);
        }
        FT_EMU_GLUE();
        in = dst;
    }
}

/* Validates, then runs the n samples of x [n, in_channels, in_length]. */
static ft_status fh_slim_forward(const fh_slim_net *v, const void *x, int32_t n, float *logits,
                                 void *buffer, int32_t buffer_bytes, ft_op_counts *ops,
                                 ft_error *err)
{
    int32_t max_elems = 0, n_classes = 0, s;
    int64_t sample_bytes;
    uint8_t *a;
    ft_ok(err);
    FT_TRY(ft_need(err, x, 2, "x"));
    FT_TRY(ft_need(err, logits, 4, "logits"));
    FT_TRY(ft_need(err, buffer, 5, "buffer"));
    FT_TRY(ft_need(err, ops, 7, "ops"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 3, "n", -1, n, 0, INT32_MAX));
    FT_TRY(fh_slim_check(v, &max_elems, &n_classes, err));
    if (v->s8 != NULL) {
        FT_TRY(fh_slim_check_requant(v->s8, err));
    }
    FT_TRY(ft_in_range(err, FT_ERR_ARENA_TOO_SMALL, 6, "buffer_bytes", -1, buffer_bytes,
                       2 * (int64_t)max_elems * v->elem_bytes, INT32_MAX));
    a = buffer;
    sample_bytes = (int64_t)v->dims->in_channels * v->dims->in_length * v->elem_bytes;
    for (s = 0; s < n; ++s) {
        fh_slim_sample(v, (const uint8_t *)x + s * sample_bytes, logits + (int64_t)s * n_classes,
                       a, a + (int64_t)max_elems * v->elem_bytes, ops);
    }
    return FT_OK;
}

ft_status fh_slim_forward_f32(const fh_slim_net_f32 *net, const float *x, int32_t n,
                              float *logits, void *buffer, int32_t buffer_bytes,
                              ft_op_counts *ops, ft_error *err)
{
    const fh_slim_net v = fh_slim_net_of(net, NULL);
    return fh_slim_forward(&v, x, n, logits, buffer, buffer_bytes, ops, err);
}

ft_status fh_slim_forward_s8(const fh_slim_net_s8 *net, const int8_t *x, int32_t n,
                             float *logits, void *buffer, int32_t buffer_bytes,
                             ft_op_counts *ops, ft_error *err)
{
    const fh_slim_net v = fh_slim_net_of(NULL, net);
    return fh_slim_forward(&v, x, n, logits, buffer, buffer_bytes, ops, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Score-margin policy                                                                       */

ft_status fh_slim_score_margin(const float *logits, int32_t n, int32_t n_classes, float th,
                               float *margin, int32_t *argmax, uint8_t *easy,
                               ft_op_counts *ops, ft_error *err)
{
    int32_t s, k;
    ft_ok(err);
    FT_TRY(ft_need(err, logits, 1, "logits"));
    FT_TRY(ft_need(err, margin, 5, "margin"));
    FT_TRY(ft_need(err, argmax, 6, "argmax"));
    FT_TRY(ft_need(err, easy, 7, "easy"));
    FT_TRY(ft_need(err, ops, 8, "ops"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 2, "n", -1, n, 0, INT32_MAX));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 3, "n_classes", -1, n_classes, 2, FH_SLIM_MAX_DIM));
    FT_TRY(ft_in_range_f(err, 4, "th", -1, th, 0.0f, 1.0f, 0));
    for (s = 0; s < n; ++s) {
        const float *z = logits + (int64_t)s * n_classes;
        int32_t i1 = z[1] > z[0] ? 1 : 0, i2 = 1 - i1;
        float sum = 0.0f, e2 = 0.0f;
        /* Softmax is monotonic: the two largest probabilities belong to the two largest logits. */
        for (k = 2; k < n_classes; ++k) {
            if (z[k] > z[i1]) {
                i2 = i1;
                i1 = k;
            } else if (z[k] > z[i2]) {
                i2 = k;
            }
        }
        for (k = 0; k < n_classes; ++k) {
            const float e = expf(z[k] - z[i1]);
            sum += e;
            e2 = k == i2 ? e : e2;
        }
        /* p1 - p2 = (exp(0) - exp(z2 - z1)) / sum. */
        margin[s] = (1.0f - e2) / sum;
        argmax[s] = i1;
        easy[s] = (uint8_t)(margin[s] > th);
    }
    ops->cmps += (int64_t)n * (1 + 2 * (int64_t)(n_classes - 2) + 1);
    ops->adds += (int64_t)n * (2 * (int64_t)n_classes - 1 + 1);
    ops->exps += (int64_t)n * n_classes;
    ops->divs += n;
    ops->bytes_moved += (int64_t)n * (4 * (int64_t)n_classes + 4 + 4 + 1);
    return FT_OK;
}
