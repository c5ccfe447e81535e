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

#include <math.h>
#include <stddef.h>

#define FH_SLIM_MAX_DIM 1048576

static int32_t fh_slim_bad_dim(int32_t v) { return v < 1 || v > FH_SLIM_MAX_DIM; }

/* Checks one conv block fed c channels of length t; writes the pooled output length. */
static fh_slim_status fh_slim_check_conv(const fh_slim_conv_dims *d, int32_t c, int32_t t,
                                         int32_t *t_out)
{
    if (fh_slim_bad_dim(d->c_in_full) || fh_slim_bad_dim(d->c_out_full) ||
        fh_slim_bad_dim(d->c_in) || fh_slim_bad_dim(d->c_out) || fh_slim_bad_dim(d->kernel) ||
        fh_slim_bad_dim(d->pool)) {
        return FH_SLIM_ERR_SHAPE;
    }
    if (d->c_in != c || d->c_in > d->c_in_full || d->c_out > d->c_out_full || t / d->pool < 1) {
        return FH_SLIM_ERR_SHAPE;
    }
    if ((int64_t)d->c_out * t > FH_SLIM_MAX_DIM) {
        return FH_SLIM_ERR_SHAPE;
    }
    *t_out = t / d->pool;
    return FH_SLIM_OK;
}

static fh_slim_status fh_slim_check_dense(const fh_slim_dense_dims *d, int32_t n_in, int32_t last)
{
    if (fh_slim_bad_dim(d->n_in_full) || fh_slim_bad_dim(d->n_out_full) ||
        fh_slim_bad_dim(d->n_in) || fh_slim_bad_dim(d->n_out)) {
        return FH_SLIM_ERR_SHAPE;
    }
    if (d->n_in != n_in || d->n_in > d->n_in_full || d->n_out > d->n_out_full) {
        return FH_SLIM_ERR_SHAPE;
    }
    if (d->relu != (last ? 0 : 1)) {
        return FH_SLIM_ERR_SHAPE;
    }
    return FH_SLIM_OK;
}

/* Validates the layer chain; writes the largest activation (elements) and the class count. */
static fh_slim_status fh_slim_check_chain(int32_t in_channels, int32_t in_length, int32_t n_conv,
                                          int32_t n_dense, const fh_slim_conv_dims *const *convs,
                                          const fh_slim_dense_dims *const *denses,
                                          int32_t *max_elems, int32_t *n_classes)
{
    int32_t c = in_channels, t = in_length, i, t_out = 0;
    int64_t biggest = 1;
    fh_slim_status st;
    if (fh_slim_bad_dim(in_channels) || fh_slim_bad_dim(in_length) || n_conv < 1 ||
        n_dense < 1 || n_conv > 64 || n_dense > 64) {
        return FH_SLIM_ERR_SHAPE;
    }
    for (i = 0; i < n_conv; ++i) {
        st = fh_slim_check_conv(convs[i], c, t, &t_out);
        if (st != FH_SLIM_OK) {
            return st;
        }
        if ((int64_t)convs[i]->c_out * t > biggest) {
            biggest = (int64_t)convs[i]->c_out * t;
        }
        c = convs[i]->c_out;
        t = t_out;
    }
    for (i = 0; i < n_dense; ++i) {
        st = fh_slim_check_dense(denses[i], c, i == n_dense - 1);
        if (st != FH_SLIM_OK) {
            return st;
        }
        c = denses[i]->n_out;
        if (c > biggest) {
            biggest = c;
        }
    }
    *max_elems = (int32_t)biggest;
    *n_classes = c;
    return FH_SLIM_OK;
}

static fh_slim_status fh_slim_check_f32(const fh_slim_net_f32 *net, int32_t *max_elems,
                                        int32_t *n_classes)
{
    const fh_slim_conv_dims *convs[64];
    const fh_slim_dense_dims *denses[64];
    int32_t i;
    if (net == NULL || net->conv == NULL || net->dense == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    if (net->n_conv < 1 || net->n_conv > 64 || net->n_dense < 1 || net->n_dense > 64) {
        return FH_SLIM_ERR_SHAPE;
    }
    for (i = 0; i < net->n_conv; ++i) {
        const fh_slim_conv_f32 *l = &net->conv[i];
        if (l->weight == NULL || l->scale == NULL || l->shift == NULL) {
            return FH_SLIM_ERR_NULL;
        }
        convs[i] = &l->dims;
    }
    for (i = 0; i < net->n_dense; ++i) {
        if (net->dense[i].weight == NULL || net->dense[i].bias == NULL) {
            return FH_SLIM_ERR_NULL;
        }
        denses[i] = &net->dense[i].dims;
    }
    return fh_slim_check_chain(net->in_channels, net->in_length, net->n_conv, net->n_dense,
                               convs, denses, max_elems, n_classes);
}

static fh_slim_status fh_slim_check_s8(const fh_slim_net_s8 *net, int32_t *max_elems,
                                       int32_t *n_classes)
{
    const fh_slim_conv_dims *convs[64];
    const fh_slim_dense_dims *denses[64];
    int32_t i;
    if (net == NULL || net->conv == NULL || net->dense == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    if (net->n_conv < 1 || net->n_conv > 64 || net->n_dense < 1 || net->n_dense > 64) {
        return FH_SLIM_ERR_SHAPE;
    }
    for (i = 0; i < net->n_conv; ++i) {
        const fh_slim_conv_s8 *l = &net->conv[i];
        if (l->weight == NULL || l->bias == NULL || l->mult == NULL || l->rshift == NULL) {
            return FH_SLIM_ERR_NULL;
        }
        convs[i] = &l->dims;
    }
    for (i = 0; i < net->n_dense; ++i) {
        const fh_slim_dense_s8 *l = &net->dense[i];
        const int32_t last = i == net->n_dense - 1;
        if (l->weight == NULL || l->bias == NULL) {
            return FH_SLIM_ERR_NULL;
        }
        if (last ? l->logit_scale == NULL : (l->mult == NULL || l->rshift == NULL)) {
            return FH_SLIM_ERR_NULL;
        }
        denses[i] = &l->dims;
    }
    return fh_slim_check_chain(net->in_channels, net->in_length, net->n_conv, net->n_dense,
                               convs, denses, max_elems, n_classes);
}

fh_slim_status fh_slim_f32_get_buffer_size(const fh_slim_net_f32 *net, int32_t *bytes)
{
    int32_t max_elems = 0, n_classes = 0;
    fh_slim_status st;
    if (bytes == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    st = fh_slim_check_f32(net, &max_elems, &n_classes);
    if (st == FH_SLIM_OK) {
        *bytes = 2 * max_elems * (int32_t)sizeof(float);
    }
    return st;
}

fh_slim_status fh_slim_s8_get_buffer_size(const fh_slim_net_s8 *net, int32_t *bytes)
{
    int32_t max_elems = 0, n_classes = 0;
    fh_slim_status st;
    if (bytes == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    st = fh_slim_check_s8(net, &max_elems, &n_classes);
    if (st == FH_SLIM_OK) {
        *bytes = 2 * max_elems;
    }
    return st;
}

/* In-bounds taps of a same-padded conv of length t and kernel k (per channel pair). */
static int64_t fh_slim_taps(int32_t t, int32_t k)
{
    const int32_t pad = (k - 1) / 2;
    int64_t taps = 0;
    int32_t o;
    for (o = 0; o < t; ++o) {
        const int32_t lo = o - pad < 0 ? pad - o : 0;
        const int32_t hi = o - pad + k > t ? t - (o - pad) : k;
        taps += hi - lo;
    }
    return taps;
}

static void fh_slim_maxpool_f32(float *buf, int32_t c, int32_t t, int32_t p, fh_slim_ops *ops)
{
    const int32_t to = t / p;
    int32_t ch, o, j;
    /* In place: output index ch * to + o never exceeds the first input index it reads. */
    for (ch = 0; ch < c; ++ch) {
        for (o = 0; o < to; ++o) {
            const float *w = buf + (int64_t)ch * t + (int64_t)o * p;
            float m = w[0];
            for (j = 1; j < p; ++j) {
                m = w[j] > m ? w[j] : m;
            }
            buf[(int64_t)ch * to + o] = m;
        }
    }
    ops->cmps += (int64_t)c * to * (p - 1);
    ops->bytes_moved += 4 * ((int64_t)c * to * p + (int64_t)c * to);
}

static void fh_slim_conv_f32_run(const fh_slim_conv_f32 *l, const float *x, int32_t t, float *y,
                                 fh_slim_ops *ops)
{
    const fh_slim_conv_dims *d = &l->dims;
    const int32_t k = d->kernel, pad = (k - 1) / 2;
    const int64_t row = (int64_t)d->c_in_full * k;
    int32_t f, c, o, j;
    int64_t taps;
    for (f = 0; f < d->c_out; ++f) {
        const float *wf = l->weight + (int64_t)f * row;
        const float scale = l->scale[f], shift = l->shift[f];
        for (o = 0; o < t; ++o) {
            const int32_t lo = o - pad < 0 ? pad - o : 0;
            const int32_t hi = o - pad + k > t ? t - (o - pad) : k;
            float acc = 0.0f;
            for (c = 0; c < d->c_in; ++c) {
                const float *wc = wf + (int64_t)c * k;
                const float *xc = x + (int64_t)c * t + (o - pad);
                for (j = lo; j < hi; ++j) {
                    acc += wc[j] * xc[j];
                }
            }
            acc = scale * acc + shift;
            y[(int64_t)f * t + o] = acc > 0.0f ? acc : 0.0f;
        }
    }
    taps = fh_slim_taps(t, k) * d->c_in * d->c_out;
    ops->macs += taps + (int64_t)d->c_out * t;
    ops->cmps += (int64_t)d->c_out * t;
    ops->bytes_moved += 4 * (2 * taps + 2 * (int64_t)d->c_out + (int64_t)d->c_out * t);
}

fh_slim_status fh_slim_forward_f32(const fh_slim_net_f32 *net, const float *x, int32_t n,
                                   float *logits, void *buffer, int32_t buffer_bytes,
                                   fh_slim_ops *ops)
{
    int32_t max_elems = 0, n_classes = 0, s, i, f, c, t, j;
    float *a, *b;
    fh_slim_status st;
    if (x == NULL || logits == NULL || buffer == NULL || ops == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    if (n < 0) {
        return FH_SLIM_ERR_ARG;
    }
    st = fh_slim_check_f32(net, &max_elems, &n_classes);
    if (st != FH_SLIM_OK) {
        return st;
    }
    if (buffer_bytes < 2 * max_elems * (int32_t)sizeof(float)) {
        return FH_SLIM_ERR_BUFFER;
    }
    a = (float *)buffer;
    b = a + max_elems;
    for (s = 0; s < n; ++s) {
        const float *in = x + (int64_t)s * net->in_channels * net->in_length;
        float *out = logits + (int64_t)s * n_classes;
        t = net->in_length;
        for (i = 0; i < net->n_conv; ++i) {
            const fh_slim_conv_f32 *l = &net->conv[i];
            float *dst = (i % 2 == 0) ? a : b;
            fh_slim_conv_f32_run(l, in, t, dst, ops);
            if (l->dims.pool > 1) {
                fh_slim_maxpool_f32(dst, l->dims.c_out, t, l->dims.pool, ops);
            }
            t /= l->dims.pool;
            in = dst;
        }
        c = net->conv[net->n_conv - 1].dims.c_out;
        {
            float *g = (net->n_conv % 2 == 0) ? a : b;
            const float inv_t = 1.0f / (float)t;
            for (f = 0; f < c; ++f) {
                float sum = 0.0f;
                for (j = 0; j < t; ++j) {
                    sum += in[(int64_t)f * t + j];
                }
                g[f] = sum * inv_t;
            }
            ops->adds += (int64_t)c * (t - 1);
            ops->muls += c;
            ops->divs += 1;
            ops->bytes_moved += 4 * ((int64_t)c * t + c);
            in = g;
        }
        for (i = 0; i < net->n_dense; ++i) {
            const fh_slim_dense_f32 *l = &net->dense[i];
            const fh_slim_dense_dims *d = &l->dims;
            float *dst = (i == net->n_dense - 1) ? out : (in == a ? b : a);
            for (f = 0; f < d->n_out; ++f) {
                const float *w = l->weight + (int64_t)f * d->n_in_full;
                float acc = l->bias[f];
                for (j = 0; j < d->n_in; ++j) {
                    acc += w[j] * in[j];
                }
                dst[f] = (d->relu && acc < 0.0f) ? 0.0f : acc;
            }
            ops->macs += (int64_t)d->n_in * d->n_out;
            ops->adds += d->n_out;
            ops->cmps += d->relu ? d->n_out : 0;
            ops->bytes_moved += 4 * (2 * (int64_t)d->n_in * d->n_out + 2 * (int64_t)d->n_out);
            in = dst;
        }
    }
    return FH_SLIM_OK;
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

static fh_slim_status fh_slim_check_rshift(const int32_t *rshift, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        if (rshift[i] < 1 || rshift[i] > 62) {
            return FH_SLIM_ERR_ARG;
        }
    }
    return FH_SLIM_OK;
}

static void fh_slim_maxpool_s8(int8_t *buf, int32_t c, int32_t t, int32_t p, fh_slim_ops *ops)
{
    const int32_t to = t / p;
    int32_t ch, o, j;
    for (ch = 0; ch < c; ++ch) {
        for (o = 0; o < to; ++o) {
            const int8_t *w = buf + (int64_t)ch * t + (int64_t)o * p;
            int8_t m = w[0];
            for (j = 1; j < p; ++j) {
                m = w[j] > m ? w[j] : m;
            }
            buf[(int64_t)ch * to + o] = m;
        }
    }
    ops->cmps += (int64_t)c * to * (p - 1);
    ops->bytes_moved += (int64_t)c * to * p + (int64_t)c * to;
}

static void fh_slim_conv_s8_run(const fh_slim_conv_s8 *l, const int8_t *x, int32_t t, int8_t *y,
                                fh_slim_ops *ops)
{
    const fh_slim_conv_dims *d = &l->dims;
    const int32_t k = d->kernel, pad = (k - 1) / 2;
    const int64_t row = (int64_t)d->c_in_full * k;
    const int64_t outs = (int64_t)d->c_out * t;
    int32_t f, c, o, j;
    int64_t taps;
    for (f = 0; f < d->c_out; ++f) {
        const int8_t *wf = l->weight + (int64_t)f * row;
        for (o = 0; o < t; ++o) {
            const int32_t lo = o - pad < 0 ? pad - o : 0;
            const int32_t hi = o - pad + k > t ? t - (o - pad) : k;
            int32_t acc = l->bias[f];
            for (c = 0; c < d->c_in; ++c) {
                const int8_t *wc = wf + (int64_t)c * k;
                const int8_t *xc = x + (int64_t)c * t + (o - pad);
                for (j = lo; j < hi; ++j) {
                    acc += (int32_t)wc[j] * (int32_t)xc[j];
                }
            }
            y[(int64_t)f * t + o] = fh_slim_requant_relu(acc, l->mult[f], l->rshift[f]);
        }
    }
    taps = fh_slim_taps(t, k) * d->c_in * d->c_out;
    ops->macs += taps;
    ops->adds += 2 * outs;
    ops->muls += outs;
    ops->cmps += 2 * outs;
    ops->bytes_moved += 2 * taps + 12 * (int64_t)d->c_out + outs;
}

fh_slim_status fh_slim_forward_s8(const fh_slim_net_s8 *net, const int8_t *x, int32_t n,
                                  float *logits, void *buffer, int32_t buffer_bytes,
                                  fh_slim_ops *ops)
{
    int32_t max_elems = 0, n_classes = 0, s, i, f, c, t, j;
    int8_t *a, *b;
    fh_slim_status st;
    if (x == NULL || logits == NULL || buffer == NULL || ops == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    if (n < 0) {
        return FH_SLIM_ERR_ARG;
    }
    st = fh_slim_check_s8(net, &max_elems, &n_classes);
    if (st != FH_SLIM_OK) {
        return st;
    }
    for (i = 0; i < net->n_conv; ++i) {
        st = fh_slim_check_rshift(net->conv[i].rshift, net->conv[i].dims.c_out);
        if (st != FH_SLIM_OK) {
            return st;
        }
    }
    for (i = 0; i + 1 < net->n_dense; ++i) {
        st = fh_slim_check_rshift(net->dense[i].rshift, net->dense[i].dims.n_out);
        if (st != FH_SLIM_OK) {
            return st;
        }
    }
    if (buffer_bytes < 2 * max_elems) {
        return FH_SLIM_ERR_BUFFER;
    }
    a = (int8_t *)buffer;
    b = a + max_elems;
    for (s = 0; s < n; ++s) {
        const int8_t *in = x + (int64_t)s * net->in_channels * net->in_length;
        float *out = logits + (int64_t)s * n_classes;
        t = net->in_length;
        for (i = 0; i < net->n_conv; ++i) {
            const fh_slim_conv_s8 *l = &net->conv[i];
            int8_t *dst = (i % 2 == 0) ? a : b;
            fh_slim_conv_s8_run(l, in, t, dst, ops);
            if (l->dims.pool > 1) {
                fh_slim_maxpool_s8(dst, l->dims.c_out, t, l->dims.pool, ops);
            }
            t /= l->dims.pool;
            in = dst;
        }
        c = net->conv[net->n_conv - 1].dims.c_out;
        {
            int8_t *g = (net->n_conv % 2 == 0) ? a : b;
            for (f = 0; f < c; ++f) {
                int32_t sum = 0;
                for (j = 0; j < t; ++j) {
                    sum += in[(int64_t)f * t + j];
                }
                /* Inputs are ReLU outputs (>= 0): rounding division by t. */
                g[f] = (int8_t)((sum + t / 2) / t);
            }
            ops->adds += (int64_t)c * (t - 1) + c;
            ops->divs += c;
            ops->bytes_moved += (int64_t)c * t + c;
            in = g;
        }
        for (i = 0; i < net->n_dense; ++i) {
            const fh_slim_dense_s8 *l = &net->dense[i];
            const fh_slim_dense_dims *d = &l->dims;
            const int32_t last = i == net->n_dense - 1;
            int8_t *dst = in == a ? b : a;
            for (f = 0; f < d->n_out; ++f) {
                const int8_t *w = l->weight + (int64_t)f * d->n_in_full;
                int32_t acc = l->bias[f];
                for (j = 0; j < d->n_in; ++j) {
                    acc += (int32_t)w[j] * (int32_t)in[j];
                }
                if (last) {
                    out[f] = (float)acc * l->logit_scale[f];
                } else {
                    dst[f] = fh_slim_requant_relu(acc, l->mult[f], l->rshift[f]);
                }
            }
            ops->macs += (int64_t)d->n_in * d->n_out;
            ops->adds += d->n_out;
            ops->muls += d->n_out;
            if (last) {
                ops->bytes_moved += 2 * (int64_t)d->n_in * d->n_out + 12 * (int64_t)d->n_out;
            } else {
                ops->adds += d->n_out;
                ops->cmps += 2 * (int64_t)d->n_out;
                ops->bytes_moved += 2 * (int64_t)d->n_in * d->n_out + 13 * (int64_t)d->n_out;
                in = dst;
            }
        }
    }
    return FH_SLIM_OK;
}

fh_slim_status fh_slim_score_margin(const float *logits, int32_t n, int32_t n_classes,
                                    float th, float *margin, int32_t *argmax, uint8_t *easy,
                                    fh_slim_ops *ops)
{
    int32_t s, k;
    if (logits == NULL || margin == NULL || argmax == NULL || easy == NULL || ops == NULL) {
        return FH_SLIM_ERR_NULL;
    }
    if (n < 0 || n_classes < 2 || n_classes > FH_SLIM_MAX_DIM || !(th >= 0.0f && th <= 1.0f)) {
        return FH_SLIM_ERR_ARG;
    }
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
    return FH_SLIM_OK;
}
