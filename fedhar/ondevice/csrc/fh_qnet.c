/*
 * fh_qnet.c - integer (packed 1/2/4/8-bit) and dynamic-range (int8 weights, float
 * activations) inference; formats and arithmetic in fh_qnet.h.
 *
 * Activations are channel-major [C, T] per sample. A conv's output step o reads input steps
 * o stride - pad + j (pad = (K - 1) / 2 for 'same', 0 for 'valid'); taps outside the input are
 * skipped. A dense layer runs as a 'valid' conv with one channel of length n_in and kernel
 * n_in. Layer i writes the ping buffer when i is even and the pong buffer when odd; the last
 * layer writes the logits.
 *
 * Integer layers. A layer with w_bits = in_bits = 1 is *binary*: for each output step o it
 * builds the window's c_in K input bits (zeros outside the input) in 32-bit words, then for
 * each filter f gathers the filter's c_in K weight bits word by word and sums
 * 2 popc(w & a) - popc(a) (SWAR popcount). Every other conv/dense unpacks a sub-byte input to
 * bytes once per layer and a sub-byte weight row once per filter, then multiply-accumulates
 * bytes. Pools unpack a sub-byte input to bytes once.
 *
 * Counting rules, per sample. n_in = c_in t_in (dense: c_in), n_w = c_out c_in K,
 * outs = c_out t_out, taps = executed in-bounds multiply-accumulates (c_out c_in sum over o of
 * the window's in-bounds taps), pb(n, b) = ceil(n b / 8):
 *   unpack a (activation, b < 8):  bitops 2 n_in (shift, mask); bytes 2 n_in (load, store)
 *   unpack w (weights, b < 8):     bitops 4 n_w (shift, mask, sign extension: xor and
 *                                  subtract; b = 1: shift, mask, doubling, -1); bytes 2 n_w
 *   requant (hidden, per output):  adds 2 (bias, rounding); muls 1; cmps 2 (clamp);
 *                                  bitops 1 (the right shift)
 *   pack (per output, b < 8):      bitops 2 (shift, or), stores pb(outs, b) bytes in all
 *   logit (last, per output):      adds 1 (bias); muls 1 (scale); bytes 4 (store)
 *   conv/dense, not binary:        unpack a [in_bits < 8] + unpack w [w_bits < 8]; macs taps;
 *                                  bytes 2 taps + per channel 9 (bias, mult, rshift) or 8
 *                                  (bias, logit_scale); hidden: requant + pack + bytes
 *                                  pb(outs, out_bits); last: logit
 *   binary conv/dense:             nw = ceil(c_in K / 32) words. Per output step: bytes 4 nw
 *                                  (zero the words); per in-bounds tap: bitops 4 (extract
 *                                  shift, mask; insert shift, or), bytes 9 (input byte, word
 *                                  load and store); popc(a): bitops 12 nw, adds nw, bytes 4 nw.
 *                                  Per output step and filter, per word i: a weight gather of
 *                                  nb = ceil((sh + m) / 8) bytes (sh = (f c_in K) mod 8, m =
 *                                  its bits, 32 but for the last word): bitops 1 + 2 (nb - 1),
 *                                  bytes nb; then bitops 13 (and, popcount), adds 1, bytes 4
 *                                  (the input word). Then bitops 1 (2 s), adds 1 (- popc(a)),
 *                                  bytes 9 or 8 (the channel's parameters), then requant (adds
 *                                  2, ...) and a pack at its index (out_bits < 8: bitops 5,
 *                                  bytes 2; 8: bytes 1), or logit
 *   max pool:                      unpack a [bits < 8]; cmps outs (K - 1); bytes outs K;
 *                                  pack [bits < 8] and bytes pb(outs, bits)
 *   avg pool, GAP:                 unpack a [bits < 8]; adds outs (K - 1) + outs (rounding);
 *                                  divs outs; bytes outs K; signed input: + cmps outs, adds
 *                                  outs (floor division); pack and bytes as max pool
 * A SWAR popcount of one 32-bit word is 12 steps (3 shift-mask-add rounds and a multiply and
 * shift), all counted as bitops.
 *
 * Dynamic-range layers (float32 activations), per sample:
 *   conv/dense: scale search: cmps n_in + 1, divs 2 (127 / max, max / 127), bytes 4 n_in;
 *               quantize: muls n_in, adds n_in (+-0.5), cmps 3 n_in (sign, clamps),
 *               bytes 5 n_in; macs taps, bytes 2 taps; per channel: muls 1 (s s_w), bytes 8;
 *               per output: muls 1, adds 1, cmps 1 if ReLU, bytes 4
 *   max pool:   cmps outs (K - 1); bytes 4 (outs K + outs)
 *   avg, GAP:   adds outs (K - 1); divs outs; bytes 4 (outs K + outs)
 */
#include "fh_qnet.h"
#include "ft_check.h"
#include "ft_emu.h"

#include <math.h>
#include <stddef.h>

#define FH_QNET_MAX_DIM 1048576
#define FH_QNET_MAX_ACT 16777216 /* elements of one activation tensor */
#define FH_QNET_MAX_LAYERS 64
#define FH_QNET_ACC_LIMIT 1073741824 /* 2^30: |bias| and |sum(w x)| bounds, so |acc| < 2^31 */
#define FH_QNET_DYN_FLOOR 1e-30f

#if defined(__GNUC__)
#define FH_QNET_KERNEL static __attribute__((noinline))
#else
#define FH_QNET_KERNEL static
#endif

/* ---------------------------------------------------------------------------------------- */
/* Either network, seen through the sizes both share                                        */

typedef struct {
    const fh_qnet *q; /* exactly one of q and d is set */
    const fh_dnet *d;
} fh_qnet_view;

static const fh_qnet_dims *fh_qnet_dims_at(const fh_qnet_view *v, int32_t i)
{
    return v->q != NULL ? &v->q->layers[i].dims : &v->d->layers[i].dims;
}

static int fh_qnet_is_linear(int32_t kind)
{
    return kind == FH_QNET_CONV || kind == FH_QNET_DENSE;
}

/* Loop geometry of a conv/dense layer: a dense layer is a 'valid' conv over one channel. */
typedef struct {
    int32_t c_in, t_in, k, stride, pad, t_out, c_out;
    int64_t row;  /* weights per filter: c_in k */
    int64_t taps; /* in-bounds multiply-accumulates of the layer */
    int64_t in_taps_per_o_sum; /* c_in * sum over o of in-bounds taps (binary window bits) */
} fh_qnet_geom;

/* The in-bounds part of the window of output step o: taps lo .. lo + n - 1 read input steps
 * x0 .. x0 + n - 1 (n may be 0 only for a 'same' window wholly outside, which cannot occur). */
typedef struct {
    int32_t lo, x0, n;
} fh_qnet_window;

static fh_qnet_window fh_qnet_window_at(const fh_qnet_geom *g, int32_t o)
{
    const int64_t start = (int64_t)o * g->stride - g->pad;
    const int64_t end = start + g->k < g->t_in ? start + g->k : g->t_in;
    fh_qnet_window w;
    w.lo = start < 0 ? (int32_t)-start : 0;
    w.x0 = (int32_t)(start + w.lo);
    w.n = (int32_t)(end - (start + w.lo));
    return w;
}

static fh_qnet_geom fh_qnet_geom_of(const fh_qnet_dims *d)
{
    fh_qnet_geom g;
    int64_t per = 0;
    int32_t o;
    if (d->kind == FH_QNET_DENSE) {
        g.c_in = 1;
        g.t_in = d->c_in;
        g.k = d->c_in;
        g.stride = 1;
        g.pad = 0;
        g.t_out = 1;
    } else {
        g.c_in = d->c_in;
        g.t_in = d->t_in;
        g.k = d->kernel;
        g.stride = d->stride;
        g.pad = d->padding == FH_QNET_SAME ? (d->kernel - 1) / 2 : 0;
        g.t_out = d->t_out;
    }
    g.c_out = d->c_out;
    g.row = (int64_t)g.c_in * g.k;
    for (o = 0; o < g.t_out; ++o) {
        per += fh_qnet_window_at(&g, o).n;
    }
    g.in_taps_per_o_sum = per * g.c_in;
    g.taps = per * g.c_in * g.c_out;
    return g;
}

static int64_t fh_qnet_packed(int64_t n, int32_t bits)
{
    return (n * bits + 7) / 8;
}

static int fh_qnet_bits_ok(int32_t b)
{
    return b == 1 || b == 2 || b == 4 || b == 8;
}

/* ---------------------------------------------------------------------------------------- */
/* Validation and memory                                                                     */

static ft_status fh_qnet_dim(ft_error *err, const char *name, int32_t i, int64_t v, int64_t lo,
                             int64_t hi)
{
    return ft_in_range(err, FT_ERR_SHAPE, 1, name, i, v, lo, hi);
}

/* Checks the sizes of layer i fed c channels of length t; writes the output's (c, t). */
static ft_status fh_qnet_check_dims(const fh_qnet_dims *d, int32_t i, int32_t c, int32_t t,
                                    int32_t *c_next, int32_t *t_next, ft_error *err)
{
    const int32_t m = FH_QNET_MAX_DIM;
    int64_t t_out;
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kind", i, d->kind, FH_QNET_CONV, FH_QNET_GAP));
    if (d->kind == FH_QNET_DENSE) {
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_in", i, d->c_in, (int64_t)c * t,
                           (int64_t)c * t));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.t_in", i, d->t_in, 1, 1));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kernel", i, d->kernel, 1, 1));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.stride", i, d->stride, 1, 1));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.padding", i, d->padding, 0, 0));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_out", i, d->c_out, 1, m));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.t_out", i, d->t_out, 1, 1));
        *c_next = d->c_out;
        *t_next = 1;
        return FT_OK;
    }
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_in", i, d->c_in, c, c));
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.t_in", i, d->t_in, t, t));
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.stride", i, d->stride, 1, m));
    if (d->kind == FH_QNET_CONV) {
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.padding", i, d->padding, 0, 1));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kernel", i, d->kernel, 1,
                           d->padding == FH_QNET_SAME ? m : t));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_out", i, d->c_out, 1, m));
        t_out = d->padding == FH_QNET_SAME ? (t - 1) / d->stride + 1
                                           : (t - d->kernel) / d->stride + 1;
    } else {
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.padding", i, d->padding, 0, 0));
        FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_out", i, d->c_out, c, c));
        if (d->kind == FH_QNET_GAP) {
            FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kernel", i, d->kernel, t, t));
            FT_TRY(fh_qnet_dim(err, "net->layers[].dims.stride", i, d->stride, t, t));
        } else {
            FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kernel", i, d->kernel, 1, t));
        }
        t_out = (t - d->kernel) / d->stride + 1;
    }
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.t_out", i, d->t_out, t_out, t_out));
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_out", i, d->c_out, 1,
                       FH_QNET_MAX_ACT / d->t_out));
    *c_next = d->c_out;
    *t_next = d->t_out;
    return FT_OK;
}

/* The bit-widths and tensors of integer layer i, fed `bits`-bit activations (signed before
 * the first conv/dense); writes the bits of its output. */
static ft_status fh_qnet_check_layer(const fh_qnet_layer *l, int32_t i, int32_t last,
                                     int32_t bits, int32_t signed_in, int32_t *bits_next,
                                     ft_error *err)
{
    const char *missing = NULL;
    int64_t w_max, a_max, limit;
    if (!fh_qnet_is_linear(l->dims.kind)) {
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].w_bits", i, l->w_bits, 0, 0));
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].in_bits", i, l->in_bits, bits,
                           bits));
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].out_bits", i, l->out_bits, bits,
                           bits));
        *bits_next = bits;
        return FT_OK;
    }
    if (!fh_qnet_bits_ok(l->w_bits)) {
        return ft_fail(err, FT_ERR_ARG, 1, "net->layers[].w_bits (1, 2, 4 or 8)", i, l->w_bits,
                       NAN, NAN, 0);
    }
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].in_bits", i, l->in_bits, bits, bits));
    if (last) {
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].out_bits", i, l->out_bits, 0, 0));
    } else if (!fh_qnet_bits_ok(l->out_bits)) {
        return ft_fail(err, FT_ERR_ARG, 1, "net->layers[].out_bits (1, 2, 4 or 8)", i,
                       l->out_bits, NAN, NAN, 0);
    }
    missing = l->weight == NULL                ? "net->layers[].weight"
              : l->bias == NULL                ? "net->layers[].bias"
              : last && l->logit_scale == NULL ? "net->layers[].logit_scale"
              : !last && l->mult == NULL       ? "net->layers[].mult"
              : !last && l->rshift == NULL     ? "net->layers[].rshift"
                                               : NULL;
    if (missing != NULL) {
        return ft_fail(err, FT_ERR_NULL, 1, missing, i, NAN, NAN, NAN, 0);
    }
    /* |sum(w x)| <= c_in kernel w_max a_max <= 2^30, so acc = bias + sum fits an int32. */
    w_max = l->w_bits == 1 ? 1 : (int64_t)1 << (l->w_bits - 1);
    a_max = signed_in ? 128 : ((int64_t)1 << bits) - 1;
    limit = FH_QNET_ACC_LIMIT / ((int64_t)l->dims.kernel * w_max * a_max);
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.c_in", i, l->dims.c_in, 1, limit));
    *bits_next = last ? 0 : l->out_bits;
    return FT_OK;
}

/* The tensors and ReLU flag of dynamic-range layer i. */
static ft_status fh_dnet_check_layer(const fh_dnet_layer *l, int32_t i, int32_t last,
                                     ft_error *err)
{
    const char *missing;
    if (!fh_qnet_is_linear(l->dims.kind)) {
        return ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].relu", i, l->relu, 0, 0);
    }
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].relu", i, l->relu, !last, !last));
    missing = l->weight == NULL    ? "net->layers[].weight"
              : l->w_scale == NULL ? "net->layers[].w_scale"
              : l->bias == NULL    ? "net->layers[].bias"
                                   : NULL;
    if (missing != NULL) {
        return ft_fail(err, FT_ERR_NULL, 1, missing, i, NAN, NAN, NAN, 0);
    }
    /* 127 * 127 * c_in * kernel < 2^31. */
    return fh_qnet_dim(err, "net->layers[].dims.c_in", i, l->dims.c_in, 1,
                       (int64_t)133144 / l->dims.kernel);
}

static int64_t fh_qnet_max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Validates v and writes its memory (fh_qnet.h, fh_qnet_memory). */
static ft_status fh_qnet_plan(const fh_qnet_view *v, fh_qnet_memory *mem, ft_error *err)
{
    const int32_t n_layers = v->q != NULL ? v->q->n_layers : v->d->n_layers;
    const int32_t in_c = v->q != NULL ? v->q->in_channels : v->d->in_channels;
    const int32_t in_t = v->q != NULL ? v->q->in_length : v->d->in_length;
    const int32_t n_classes = v->q != NULL ? v->q->n_classes : v->d->n_classes;
    const void *layers = v->q != NULL ? (const void *)v->q->layers : (const void *)v->d->layers;
    int32_t c = in_c, t = in_t, bits = 8, signed_in = 1, i;
    int64_t buf[2] = {0, 0}, total;
    FT_TRY(ft_need(err, layers, 1, "net->layers"));
    FT_TRY(fh_qnet_dim(err, "net->n_layers", -1, n_layers, 1, FH_QNET_MAX_LAYERS));
    FT_TRY(fh_qnet_dim(err, "net->in_channels", -1, in_c, 1, FH_QNET_MAX_DIM));
    FT_TRY(fh_qnet_dim(err, "net->in_length", -1, in_t, 1, FH_QNET_MAX_ACT / in_c));
    FT_TRY(fh_qnet_dim(err, "net->layers[].dims.kind", n_layers - 1,
                       fh_qnet_dims_at(v, n_layers - 1)->kind, FH_QNET_CONV, FH_QNET_DENSE));
    mem->model = mem->ping = mem->pong = 0;
    mem->unpacked_input = mem->unpacked_weights = mem->bit_columns = 0;
    for (i = 0; i < n_layers; ++i) {
        const fh_qnet_dims *d = fh_qnet_dims_at(v, i);
        const int32_t last = i == n_layers - 1;
        const int64_t n_in = (int64_t)c * t;
        int32_t c_next = 0, t_next = 0, bits_next = 0;
        FT_TRY(fh_qnet_check_dims(d, i, c, t, &c_next, &t_next, err));
        if (v->q != NULL) {
            const fh_qnet_layer *l = &v->q->layers[i];
            FT_TRY(fh_qnet_check_layer(l, i, last, bits, signed_in, &bits_next, err));
            if (fh_qnet_is_linear(d->kind)) {
                const int64_t row = (int64_t)d->c_in * d->kernel;
                const int64_t n_w = row * d->c_out;
                mem->model += fh_qnet_packed(n_w, l->w_bits) + (int64_t)d->c_out * (last ? 8 : 9);
                if (l->w_bits == 1 && l->in_bits == 1) {
                    mem->bit_columns = fh_qnet_max(mem->bit_columns, 4 * ((row + 31) / 32));
                } else {
                    if (l->in_bits < 8) {
                        mem->unpacked_input = fh_qnet_max(mem->unpacked_input, n_in);
                    }
                    if (l->w_bits < 8) {
                        mem->unpacked_weights = fh_qnet_max(mem->unpacked_weights, row);
                    }
                }
                signed_in = 0;
            } else if (bits < 8) {
                mem->unpacked_input = fh_qnet_max(mem->unpacked_input, n_in);
            }
            if (!last) {
                buf[i % 2] = fh_qnet_max(buf[i % 2],
                                         fh_qnet_packed((int64_t)c_next * t_next, bits_next));
            }
            bits = bits_next;
        } else {
            const fh_dnet_layer *l = &v->d->layers[i];
            FT_TRY(fh_dnet_check_layer(l, i, last, err));
            if (fh_qnet_is_linear(d->kind)) {
                mem->model += (int64_t)d->c_in * d->kernel * d->c_out + 8 * (int64_t)d->c_out;
                mem->unpacked_input = fh_qnet_max(mem->unpacked_input, n_in);
            }
            if (!last) {
                buf[i % 2] = fh_qnet_max(buf[i % 2], 4 * (int64_t)c_next * t_next);
            }
        }
        if (last) {
            FT_TRY(fh_qnet_dim(err, "net->n_classes", -1, n_classes, (int64_t)c_next * t_next,
                               (int64_t)c_next * t_next));
        }
        c = c_next;
        t = t_next;
    }
    mem->ping = buf[0];
    mem->pong = buf[1];
    total = mem->ping + mem->pong + mem->unpacked_input + mem->unpacked_weights +
            mem->bit_columns;
    FT_TRY(fh_qnet_dim(err, "net (scratch bytes)", -1, total, 0, INT32_MAX));
    mem->buffer = total;
    return FT_OK;
}

/* Per-call value checks of an integer network: shifts in 1..62, |bias| <= 2^30. */
static ft_status fh_qnet_check_values(const fh_qnet *net, ft_error *err)
{
    int32_t i, f;
    for (i = 0; i < net->n_layers; ++i) {
        const fh_qnet_layer *l = &net->layers[i];
        if (!fh_qnet_is_linear(l->dims.kind)) {
            continue;
        }
        for (f = 0; f < l->dims.c_out; ++f) {
            FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].bias", i, l->bias[f],
                               -FH_QNET_ACC_LIMIT, FH_QNET_ACC_LIMIT));
            if (l->out_bits != 0) {
                FT_TRY(ft_in_range(err, FT_ERR_ARG, 1, "net->layers[].rshift", i, l->rshift[f],
                                   1, 62));
            }
        }
    }
    return FT_OK;
}

ft_status fh_qnet_get_memory(const fh_qnet *net, fh_qnet_memory *mem, ft_error *err)
{
    fh_qnet_view v;
    ft_ok(err);
    FT_TRY(ft_need(err, net, 1, "net"));
    FT_TRY(ft_need(err, mem, 2, "mem"));
    v.q = net;
    v.d = NULL;
    return fh_qnet_plan(&v, mem, err);
}

ft_status fh_qnet_get_buffer_size(const fh_qnet *net, int32_t *bytes, ft_error *err)
{
    fh_qnet_memory mem;
    ft_ok(err);
    FT_TRY(ft_need(err, bytes, 2, "bytes"));
    FT_TRY(fh_qnet_get_memory(net, &mem, err));
    *bytes = (int32_t)mem.buffer;
    return FT_OK;
}

ft_status fh_qnet_model_bytes(const fh_qnet *net, int64_t *bytes, ft_error *err)
{
    fh_qnet_memory mem;
    ft_ok(err);
    FT_TRY(ft_need(err, bytes, 2, "bytes"));
    FT_TRY(fh_qnet_get_memory(net, &mem, err));
    *bytes = mem.model;
    return FT_OK;
}

ft_status fh_dnet_get_memory(const fh_dnet *net, fh_qnet_memory *mem, ft_error *err)
{
    fh_qnet_view v;
    ft_ok(err);
    FT_TRY(ft_need(err, net, 1, "net"));
    FT_TRY(ft_need(err, mem, 2, "mem"));
    v.q = NULL;
    v.d = net;
    return fh_qnet_plan(&v, mem, err);
}

ft_status fh_dnet_get_buffer_size(const fh_dnet *net, int32_t *bytes, ft_error *err)
{
    fh_qnet_memory mem;
    ft_ok(err);
    FT_TRY(ft_need(err, bytes, 2, "bytes"));
    FT_TRY(fh_dnet_get_memory(net, &mem, err));
    *bytes = (int32_t)mem.buffer;
    return FT_OK;
}

/* The pointer and size checks that both forward passes start with. */
static ft_status fh_qnet_check_call(const void *x, int32_t n, const float *logits,
                                    const void *buffer, int32_t buffer_bytes, int64_t needed,
                                    const ft_op_counts *ops, ft_error *err)
{
    FT_TRY(ft_need(err, x, 2, "x"));
    FT_TRY(ft_need(err, logits, 4, "logits"));
    FT_TRY(ft_need(err, buffer, 5, "buffer"));
    FT_TRY(ft_need(err, ops, 7, "ops"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 3, "n", -1, n, 0, INT32_MAX));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 5, "buffer (address mod 4)", -1,
                       (int64_t)((uintptr_t)buffer & 3u), 0, 0));
    return ft_in_range(err, FT_ERR_ARENA_TOO_SMALL, 6, "buffer_bytes", -1, buffer_bytes, needed,
                       INT32_MAX);
}

/* ---------------------------------------------------------------------------------------- */
/* Bits and bytes                                                                            */

/* Unpacks n unsigned b-bit values (b < 8) from bit 0 of src into bytes. Bit positions fit 32
 * bits: an activation holds at most 2^24 values. */
static void fh_qnet_unpack_a(const uint8_t *src, int32_t n, int32_t bits, uint8_t *dst)
{
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t p = 0;
    int32_t i;
    for (i = 0; i < n; ++i, p += (uint32_t)bits) {
        dst[i] = (uint8_t)(((uint32_t)src[p >> 3] >> (p & 7u)) & mask);
    }
}

/* Unpacks n signed b-bit weight levels (b < 8) starting at value `first` of src. The bits of
 * one row fit 32 bits: n b < 2^31 by the accumulator bound of fh_qnet_check_layer. */
static void fh_qnet_unpack_w(const uint8_t *src, int64_t first, int32_t n, int32_t bits,
                             int8_t *dst)
{
    const uint32_t mask = (1u << bits) - 1u;
    const int32_t half = bits == 1 ? 0 : 1 << (bits - 1);
    const uint8_t *row = src + ((first * bits) >> 3);
    uint32_t p = (uint32_t)((first * bits) & 7);
    int32_t i;
    for (i = 0; i < n; ++i, p += (uint32_t)bits) {
        const uint32_t u = ((uint32_t)row[p >> 3] >> (p & 7u)) & mask;
        dst[i] = (int8_t)(bits == 1 ? (int32_t)(u << 1) - 1
                                    : (int32_t)(u ^ (uint32_t)half) - half);
    }
}

/* Packs values one after the other from bit 0 of its buffer (b < 8: LSB-first in bytes). */
typedef struct {
    uint8_t *p;
    uint32_t acc;
    int32_t fill, bits;
} fh_qnet_packer;

static fh_qnet_packer fh_qnet_packer_at(uint8_t *p, int32_t bits)
{
    fh_qnet_packer pk;
    pk.p = p;
    pk.acc = 0;
    pk.fill = 0;
    pk.bits = bits;
    return pk;
}

static void fh_qnet_put(fh_qnet_packer *pk, uint32_t v)
{
    if (pk->bits == 8) {
        *pk->p++ = (uint8_t)v;
        return;
    }
    pk->acc |= v << pk->fill;
    pk->fill += pk->bits;
    if (pk->fill == 8) {
        *pk->p++ = (uint8_t)pk->acc;
        pk->acc = 0;
        pk->fill = 0;
    }
}

static void fh_qnet_flush(fh_qnet_packer *pk)
{
    if (pk->fill > 0) {
        *pk->p = (uint8_t)pk->acc;
    }
}

/* Writes b-bit value v as value idx of packed buf, keeping the other bits of its byte. */
static void fh_qnet_put_at(uint8_t *buf, int64_t idx, int32_t bits, uint32_t v)
{
    if (bits == 8) {
        buf[idx] = (uint8_t)v;
    } else {
        const int64_t p = idx * bits;
        const uint32_t sh = (uint32_t)(p & 7), mask = ((1u << bits) - 1u) << sh;
        buf[p >> 3] = (uint8_t)(((uint32_t)buf[p >> 3] & ~mask) | (v << sh));
    }
}

/* Bits sh .. sh + m - 1 (0 <= sh < 8, 1 <= m <= 32) of b, LSB-first, in a word whose bits
 * above m are unspecified; reads only the ceil((sh + m) / 8) bytes that hold them. */
static uint32_t fh_qnet_gather(const uint8_t *b, int32_t sh, int32_t m)
{
    const int32_t nb = (sh + m + 7) >> 3;
    uint32_t v = (uint32_t)b[0] >> sh;
    int32_t i;
    for (i = 1; i < nb; ++i) {
        v |= (uint32_t)b[i] << (8 * i - sh);
    }
    return v;
}

/* SWAR population count of a 32-bit word (12 steps). */
static uint32_t fh_qnet_popc(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (v * 0x01010101u) >> 24;
}

/* round(acc mult 2^-rshift), half away from zero, clamped to [0, top] (ReLU). */
static uint32_t fh_qnet_requant(int32_t acc, int32_t mult, int32_t rshift, int32_t top)
{
    const int64_t prod = (int64_t)acc * (int64_t)mult;
    const int64_t half = (int64_t)1 << (rshift - 1);
    const int64_t mag = ((prod < 0 ? -prod : prod) + half) >> rshift;
    const int64_t v = prod < 0 ? -mag : mag;
    return (uint32_t)(v < 0 ? 0 : (v > top ? top : v));
}

/* ---------------------------------------------------------------------------------------- */
/* Integer kernels                                                                           */

/* Conv/dense that multiply-accumulates bytes. x: the layer's input (int8 when signed_in, else
 * unsigned, packed at in_bits); y: packed output (hidden) or logits (last). */
FH_QNET_KERNEL void fh_qnet_linear(const fh_qnet_layer *l, const fh_qnet_geom *g,
                                   const uint8_t *x, int32_t signed_in, void *y, uint8_t *ua,
                                   int8_t *uw, ft_op_counts *ops)
{
    const int32_t last = l->out_bits == 0, top = last ? 0 : (1 << l->out_bits) - 1;
    const int64_t n_in = (int64_t)g->c_in * g->t_in, outs = (int64_t)g->c_out * g->t_out;
    const uint8_t *xa = x;
    const int8_t *xs = (const int8_t *)x;
    fh_qnet_packer pk = fh_qnet_packer_at(y, last ? 8 : l->out_bits);
    float *logits = y;
    int32_t f, o, c, j;
    if (l->in_bits < 8) {
        fh_qnet_unpack_a(x, (int32_t)n_in, l->in_bits, ua);
        xa = ua;
        ops->bitops += 2 * n_in;
        ops->bytes_moved += 2 * n_in;
    }
    for (f = 0; f < g->c_out; ++f) {
        const int8_t *w = (const int8_t *)l->weight + (int64_t)f * g->row;
        if (l->w_bits < 8) {
            fh_qnet_unpack_w(l->weight, (int64_t)f * g->row, (int32_t)g->row, l->w_bits, uw);
            w = uw;
        }
        for (o = 0; o < g->t_out; ++o) {
            const fh_qnet_window win = fh_qnet_window_at(g, o);
            int32_t acc = l->bias[f];
            for (c = 0; c < g->c_in; ++c) {
                const int8_t *wc = w + c * g->k + win.lo;
                const int32_t at = c * g->t_in + win.x0;
                if (signed_in) {
                    const int8_t *xc = xs + at;
                    for (j = 0; j < win.n; ++j) {
                        acc += (int32_t)wc[j] * (int32_t)xc[j];
                    }
                } else {
                    const uint8_t *xc = xa + at;
                    for (j = 0; j < win.n; ++j) {
                        acc += (int32_t)wc[j] * (int32_t)xc[j];
                    }
                }
            }
            if (last) {
                logits[(int64_t)f * g->t_out + o] = (float)acc * l->logit_scale[f];
            } else {
                fh_qnet_put(&pk, fh_qnet_requant(acc, l->mult[f], l->rshift[f], top));
            }
        }
    }
    if (l->w_bits < 8) {
        ops->bitops += 4 * g->row * g->c_out;
        ops->bytes_moved += 2 * g->row * g->c_out;
    }
    ops->macs += g->taps;
    ops->bytes_moved += 2 * g->taps;
    if (last) {
        ops->adds += outs;
        ops->muls += outs;
        ops->bytes_moved += 8 * (int64_t)g->c_out + 4 * outs;
    } else {
        fh_qnet_flush(&pk);
        ops->adds += 2 * outs;
        ops->muls += outs;
        ops->cmps += 2 * outs;
        ops->bitops += outs + (l->out_bits < 8 ? 2 * outs : 0);
        ops->bytes_moved += 9 * (int64_t)g->c_out + fh_qnet_packed(outs, l->out_bits);
    }
}

/* Binary conv/dense (w_bits = in_bits = 1): AND and popcount over 32-bit words. */
FH_QNET_KERNEL void fh_qnet_binary(const fh_qnet_layer *l, const fh_qnet_geom *g,
                                   const uint8_t *x, void *y, uint32_t *col, ft_op_counts *ops)
{
    const int32_t last = l->out_bits == 0, top = last ? 0 : (1 << l->out_bits) - 1;
    const int32_t nw = (int32_t)((g->row + 31) / 32), tail = (int32_t)(g->row - 32 * (nw - 1));
    const int64_t outs = (int64_t)g->c_out * g->t_out;
    float *logits = y;
    int64_t gather_bitops = 0, gather_bytes = 0;
    int32_t f, o, c, j, i;
    for (o = 0; o < g->t_out; ++o) {
        const fh_qnet_window win = fh_qnet_window_at(g, o);
        int32_t pa = 0;
        for (i = 0; i < nw; ++i) {
            col[i] = 0u;
        }
        for (c = 0; c < g->c_in; ++c) {
            const uint32_t p0 = (uint32_t)(c * g->t_in + win.x0), q0 = (uint32_t)(c * g->k + win.lo);
            for (j = 0; j < win.n; ++j) {
                const uint32_t p = p0 + (uint32_t)j, q = q0 + (uint32_t)j;
                const uint32_t bit = ((uint32_t)x[p >> 3] >> (p & 7u)) & 1u;
                col[q >> 5] |= bit << (q & 31u);
            }
        }
        for (i = 0; i < nw; ++i) {
            pa += (int32_t)fh_qnet_popc(col[i]);
        }
        for (f = 0; f < g->c_out; ++f) {
            const int64_t base = (int64_t)f * g->row;
            const uint8_t *wf = l->weight + (base >> 3);
            const int32_t sh = (int32_t)(base & 7);
            int32_t s = 0, acc;
            for (i = 0; i < nw - 1; ++i) {
                s += (int32_t)fh_qnet_popc(fh_qnet_gather(wf + 4 * i, sh, 32) & col[i]);
            }
            s += (int32_t)fh_qnet_popc(fh_qnet_gather(wf + 4 * (nw - 1), sh, tail) & col[nw - 1]);
            acc = l->bias[f] + 2 * s - pa;
            if (last) {
                logits[(int64_t)f * g->t_out + o] = (float)acc * l->logit_scale[f];
            } else {
                fh_qnet_put_at(y, (int64_t)f * g->t_out + o, l->out_bits,
                               fh_qnet_requant(acc, l->mult[f], l->rshift[f], top));
            }
        }
    }
    /* Gathers: the same for every output step; the shift of filter f is (f row) mod 8. */
    for (f = 0; f < g->c_out; ++f) {
        const int32_t sh = (int32_t)(((int64_t)f * g->row) & 7);
        for (i = 0; i < nw; ++i) {
            const int32_t nb = (sh + (i == nw - 1 ? tail : 32) + 7) >> 3;
            gather_bitops += 1 + 2 * (nb - 1);
            gather_bytes += nb;
        }
    }
    ops->bytes_moved += g->t_out * (8 * (int64_t)nw) + 9 * g->in_taps_per_o_sum;
    ops->bitops += 4 * g->in_taps_per_o_sum + 12 * (int64_t)nw * g->t_out;
    ops->adds += (int64_t)nw * g->t_out;
    ops->bitops += g->t_out * gather_bitops + 13 * (int64_t)nw * outs + outs;
    ops->bytes_moved += g->t_out * gather_bytes + 4 * (int64_t)nw * outs;
    ops->adds += (int64_t)nw * outs + outs;
    if (last) {
        ops->adds += outs;
        ops->muls += outs;
        ops->bytes_moved += 8 * outs + 4 * outs;
    } else {
        ops->adds += 2 * outs;
        ops->muls += outs;
        ops->cmps += 2 * outs;
        ops->bitops += outs + (l->out_bits < 8 ? 5 * outs : 0);
        ops->bytes_moved += 9 * outs + (l->out_bits < 8 ? 2 * outs : outs);
    }
}

/* Max/average pool or GAP of packed bits-bit activations (int8 when signed_in). */
FH_QNET_KERNEL void fh_qnet_pool(const fh_qnet_layer *l, const uint8_t *x, int32_t signed_in,
                                 uint8_t *y, uint8_t *ua, ft_op_counts *ops)
{
    const fh_qnet_dims *d = &l->dims;
    const int32_t bits = l->in_bits, k = d->kernel, mx = d->kind == FH_QNET_MAXPOOL;
    const int64_t n_in = (int64_t)d->c_in * d->t_in, outs = (int64_t)d->c_out * d->t_out;
    const uint8_t *xa = x;
    const int8_t *xs = (const int8_t *)x;
    fh_qnet_packer pk = fh_qnet_packer_at(y, bits);
    int32_t ch, o, j;
    if (bits < 8) {
        fh_qnet_unpack_a(x, (int32_t)n_in, bits, ua);
        xa = ua;
        ops->bitops += 2 * n_in;
        ops->bytes_moved += 2 * n_in;
    }
    for (ch = 0; ch < d->c_in; ++ch) {
        for (o = 0; o < d->t_out; ++o) {
            const int64_t at = (int64_t)ch * d->t_in + (int64_t)o * d->stride;
            int32_t v = signed_in ? xs[at] : xa[at];
            for (j = 1; j < k; ++j) {
                const int32_t e = signed_in ? xs[at + j] : xa[at + j];
                if (mx) {
                    v = e > v ? e : v;
                } else {
                    v += e;
                }
            }
            if (!mx) {
                v += k / 2;
                v = (v - (v < 0 ? k - 1 : 0)) / k; /* floor division */
            }
            fh_qnet_put(&pk, (uint32_t)v & 0xFFu);
        }
    }
    fh_qnet_flush(&pk);
    if (mx) {
        ops->cmps += outs * (k - 1);
    } else {
        ops->adds += outs * k;
        ops->divs += outs;
        if (signed_in) {
            ops->cmps += outs;
            ops->adds += outs;
        }
    }
    ops->bytes_moved += outs * k + fh_qnet_packed(outs, bits);
    ops->bitops += bits < 8 ? 2 * outs : 0;
}

/* The memory of the scratch buffer, in the order of fh_qnet_memory after the 4-byte words. */
typedef struct {
    uint32_t *col;
    uint8_t *ping, *pong, *ua;
    int8_t *uw;
} fh_qnet_scratch;

static fh_qnet_scratch fh_qnet_scratch_of(void *buffer, const fh_qnet_memory *mem)
{
    fh_qnet_scratch s;
    uint8_t *b = buffer;
    s.col = buffer;
    s.ping = b + mem->bit_columns;
    s.pong = s.ping + mem->ping;
    s.ua = s.pong + mem->pong;
    s.uw = (int8_t *)(s.ua + mem->unpacked_input);
    return s;
}

/* One sample x [in_channels, in_length] to logits [n_classes]. */
static void fh_qnet_sample(const fh_qnet *net, const int8_t *x, float *logits,
                           const fh_qnet_scratch *s, ft_op_counts *ops)
{
    const uint8_t *in = (const uint8_t *)x;
    int32_t signed_in = 1, i;
    for (i = 0; i < net->n_layers; ++i) {
        const fh_qnet_layer *l = &net->layers[i];
        void *out = i == net->n_layers - 1 ? (void *)logits : (i % 2 == 0 ? s->ping : s->pong);
        FT_EMU_MARK(i, 0);
        if (fh_qnet_is_linear(l->dims.kind)) {
            const fh_qnet_geom g = fh_qnet_geom_of(&l->dims);
            if (l->w_bits == 1 && l->in_bits == 1) {
                fh_qnet_binary(l, &g, in, out, s->col, ops);
            } else {
                fh_qnet_linear(l, &g, in, signed_in, out, s->ua, s->uw, ops);
            }
            signed_in = 0;
        } else {
            fh_qnet_pool(l, in, signed_in, out, s->ua, ops);
        }
        FT_EMU_GLUE();
        in = out;
    }
}

ft_status fh_qnet_forward(const fh_qnet *net, const int8_t *x, int32_t n, float *logits,
                          void *buffer, int32_t buffer_bytes, ft_op_counts *ops, ft_error *err)
{
    fh_qnet_memory mem;
    fh_qnet_scratch s;
    int64_t sample;
    int32_t i;
    ft_ok(err);
    FT_TRY(fh_qnet_get_memory(net, &mem, err));
    FT_TRY(fh_qnet_check_call(x, n, logits, buffer, buffer_bytes, mem.buffer, ops, err));
    FT_TRY(fh_qnet_check_values(net, err));
    s = fh_qnet_scratch_of(buffer, &mem);
    sample = (int64_t)net->in_channels * net->in_length;
    for (i = 0; i < n; ++i) {
        fh_qnet_sample(net, x + i * sample, logits + (int64_t)i * net->n_classes, &s, ops);
    }
    return FT_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Dynamic-range kernels                                                                     */

/* The float kernels are written to round exactly like their numpy reference (one IEEE
 * operation per step); a fused multiply-add would round differently, so GCC may not contract. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Quantizes the n floats of x to int8 q with the per-tensor scale returned: max|x| / 127. */
static float fh_dnet_quantize(const float *x, int64_t n, int8_t *q)
{
    float m = 0.0f, inv, s;
    int64_t i;
    int32_t live;
    for (i = 0; i < n; ++i) {
        const float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    live = m > FH_QNET_DYN_FLOOR;
    inv = 127.0f / (live ? m : 1.0f);
    s = m / 127.0f;
    inv = live ? inv : 0.0f;
    s = live ? s : 0.0f;
    for (i = 0; i < n; ++i) {
        const float v = x[i] * inv;
        float r = v + (v < 0.0f ? -0.5f : 0.5f);
        r = r <= 127.0f ? r : 127.0f; /* NaN becomes 127 */
        r = r >= -127.0f ? r : -127.0f;
        q[i] = (int8_t)(int32_t)r;
    }
    return s;
}

FH_QNET_KERNEL void fh_dnet_linear(const fh_dnet_layer *l, const fh_qnet_geom *g, const float *x,
                                   float *y, int8_t *q, ft_op_counts *ops)
{
    const int64_t n_in = (int64_t)g->c_in * g->t_in, outs = (int64_t)g->c_out * g->t_out;
    const float s = fh_dnet_quantize(x, n_in, q);
    int32_t f, o, c, j;
    for (f = 0; f < g->c_out; ++f) {
        const int8_t *w = l->weight + (int64_t)f * g->row;
        const float step = s * l->w_scale[f];
        for (o = 0; o < g->t_out; ++o) {
            const fh_qnet_window win = fh_qnet_window_at(g, o);
            int32_t acc = 0;
            float v;
            for (c = 0; c < g->c_in; ++c) {
                const int8_t *wc = w + (int64_t)c * g->k + win.lo;
                const int8_t *xc = q + (int64_t)c * g->t_in + win.x0;
                for (j = 0; j < win.n; ++j) {
                    acc += (int32_t)wc[j] * (int32_t)xc[j];
                }
            }
            v = (float)acc * step;
            v = v + l->bias[f];
            y[(int64_t)f * g->t_out + o] = (l->relu && !(v > 0.0f)) ? 0.0f : v;
        }
    }
    ops->cmps += n_in + 1 + 3 * n_in + (l->relu ? outs : 0);
    ops->divs += 2;
    ops->muls += n_in + g->c_out + outs;
    ops->adds += n_in + outs;
    ops->macs += g->taps;
    ops->bytes_moved += 9 * n_in + 2 * g->taps + 8 * (int64_t)g->c_out + 4 * outs;
}

FH_QNET_KERNEL void fh_dnet_pool(const fh_qnet_dims *d, const float *x, float *y,
                                 ft_op_counts *ops)
{
    const int32_t k = d->kernel, mx = d->kind == FH_QNET_MAXPOOL;
    const int64_t outs = (int64_t)d->c_out * d->t_out;
    int32_t ch, o, j;
    for (ch = 0; ch < d->c_in; ++ch) {
        for (o = 0; o < d->t_out; ++o) {
            const float *w = x + (int64_t)ch * d->t_in + (int64_t)o * d->stride;
            float v = w[0];
            for (j = 1; j < k; ++j) {
                if (mx) {
                    v = w[j] > v ? w[j] : v;
                } else {
                    v = v + w[j];
                }
            }
            y[(int64_t)ch * d->t_out + o] = mx ? v : v / (float)k;
        }
    }
    if (mx) {
        ops->cmps += outs * (k - 1);
    } else {
        ops->adds += outs * (k - 1);
        ops->divs += outs;
    }
    ops->bytes_moved += 4 * (outs * k + outs);
}

ft_status fh_dnet_forward(const fh_dnet *net, const float *x, int32_t n, float *logits,
                          void *buffer, int32_t buffer_bytes, ft_op_counts *ops, ft_error *err)
{
    fh_qnet_memory mem;
    float *ping, *pong;
    int8_t *q;
    int64_t sample;
    int32_t s, i;
    ft_ok(err);
    FT_TRY(fh_dnet_get_memory(net, &mem, err));
    FT_TRY(fh_qnet_check_call(x, n, logits, buffer, buffer_bytes, mem.buffer, ops, err));
    ping = buffer;
    pong = (float *)((uint8_t *)buffer + mem.ping);
    q = (int8_t *)((uint8_t *)buffer + mem.ping + mem.pong);
    sample = (int64_t)net->in_channels * net->in_length;
    for (s = 0; s < n; ++s) {
        const float *in = x + s * sample;
        for (i = 0; i < net->n_layers; ++i) {
            const fh_dnet_layer *l = &net->layers[i];
            float *out = i == net->n_layers - 1 ? logits + (int64_t)s * net->n_classes
                                                : (i % 2 == 0 ? ping : pong);
            FT_EMU_MARK(i, 0);
            if (fh_qnet_is_linear(l->dims.kind)) {
                const fh_qnet_geom g = fh_qnet_geom_of(&l->dims);
                fh_dnet_linear(l, &g, in, out, q, ops);
            } else {
                fh_dnet_pool(&l->dims, in, out, ops);
            }
            FT_EMU_GLUE();
            in = out;
        }
    }
    return FT_OK;
}
