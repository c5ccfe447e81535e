/*
 * ft_train.c - forward and backward of one sample through a context's layers, and the
 * training (ft_train_batch, ft_train_epoch), evaluation (ft_logits) and sample-storage
 * entry points. Gradients accumulate per sample; one SGD update follows each batch.
 */
#include <math.h>
#include <string.h>

#include "ft_emu.h"
#include "ft_internal.h"

/* ---------------------------------------------------------------------------------- */
/* Forward and backward of one sample                                                   */

static ft_op_counts *counter(ft_context *ctx, int32_t row, int32_t phase)
{
    return &ctx->counts[(int64_t)row * FT_PHASE_COUNT + phase];
}

static void conv_dims(const ft_layer_desc *d, ft_conv_dims *cd)
{
    if (d->kind == FT_LAYER_CONV1D) {
        cd->c = d->in_c;
        cd->t_pad = d->in_t + d->pad_left + d->pad_right;
        cd->k = d->kernel;
        cd->s = d->stride;
    } else {
        cd->c = d->in_c;
        cd->t_pad = 1;
        cd->k = 1;
        cd->s = 1;
    }
    cd->f = d->out_c;
    cd->t_out = d->out_t;
}

static void pool_dims(const ft_layer_desc *d, ft_pool_dims *pd)
{
    pd->c = d->in_c;
    pd->t_in = d->in_t;
    pd->t_out = d->out_t;
    pd->size = d->kernel;
    pd->stride = d->stride;
}

/* Input sample x [C, T] (PyTorch) -> input buffer [T, C]. */
static void load_sample(ft_context *ctx, const float *x)
{
    const int32_t c = ctx->in_c, t = ctx->in_t;
    int32_t ci, ti;
    for (ci = 0; ci < c; ++ci) {
        for (ti = 0; ti < t; ++ti) {
            ctx->input[(int64_t)ti * c + ci] = x[(int64_t)ci * t + ti];
        }
    }
}

static void prepare_batchnorms(ft_context *ctx)
{
    int32_t i;
    for (i = 0; i < ctx->n_layers; ++i) {
        ft_layer *L = &ctx->layers[i];
        if (L->d.kind == FT_LAYER_BATCHNORM1D) {
            FT_EMU_MARK(i, FT_PHASE_FORWARD);
            ft_batchnorm1d_prepare(L->d.in_c, L->w, L->b, L->mean, L->var, L->d.eps, L->fold,
                                   counter(ctx, i, FT_PHASE_FORWARD));
            FT_EMU_GLUE();
        }
    }
}

static void forward_sample(ft_context *ctx, int training)
{
    int32_t i;
    for (i = 0; i < ctx->n_layers; ++i) {
        ft_layer *L = &ctx->layers[i];
        const ft_layer_desc *d = &L->d;
        const float *in = i > 0 ? ctx->layers[i - 1].out : ctx->input;
        ft_op_counts *cnt = counter(ctx, i, FT_PHASE_FORWARD);
        FT_EMU_MARK(i, FT_PHASE_FORWARD);
        switch (d->kind) {
        case FT_LAYER_CONV1D:
        case FT_LAYER_DENSE: {
            ft_conv_dims cd;
            conv_dims(d, &cd);
            ft_conv1d_forward(&cd, in - (int64_t)d->pad_left * d->in_c, L->w, L->b, L->out, cnt);
            break;
        }
        case FT_LAYER_RELU:
            ft_relu_forward(L->out, d->in_c * d->in_t, cnt);
            break;
        case FT_LAYER_AVGPOOL1D: {
            ft_pool_dims pd;
            pool_dims(d, &pd);
            ft_avgpool1d_forward(&pd, in, L->out, cnt);
            break;
        }
        case FT_LAYER_MAXPOOL1D: {
            ft_pool_dims pd;
            pool_dims(d, &pd);
            ft_maxpool1d_forward(&pd, in, L->out, training ? L->idx : NULL, cnt);
            break;
        }
        case FT_LAYER_GAP1D:
            ft_gap1d_forward(d->in_t, d->in_c, in, L->out, cnt);
            break;
        case FT_LAYER_FLATTEN:
            ft_flatten_forward(d->in_t, d->in_c, in, L->out, cnt);
            break;
        default: /* FT_LAYER_BATCHNORM1D; kinds are validated at init */
            ft_batchnorm1d_forward(d->in_t, d->in_c, L->fold, in, L->out, cnt);
            break;
        }
        FT_EMU_GLUE();
    }
}

/* Backward from the last layer's dout down to the first trainable layer. */
static void backward_sample(ft_context *ctx)
{
    const int32_t s = ctx->first_trainable;
    int32_t i;
    for (i = ctx->n_layers - 1; i >= s; --i) {
        ft_layer *L = &ctx->layers[i];
        const ft_layer_desc *d = &L->d;
        const float *in = i > 0 ? ctx->layers[i - 1].out : ctx->input;
        const int need_dx = i > s;
        ft_op_counts *cw = counter(ctx, i, FT_PHASE_BACKWARD_WEIGHTS);
        ft_op_counts *ci = counter(ctx, i, FT_PHASE_BACKWARD_INPUT);
        switch (d->kind) {
        case FT_LAYER_CONV1D:
        case FT_LAYER_DENSE: {
            ft_conv_dims cd;
            conv_dims(d, &cd);
            if (L->trainable) {
                FT_EMU_MARK(i, FT_PHASE_BACKWARD_WEIGHTS);
                ft_conv1d_backward_weights(&cd, in - (int64_t)d->pad_left * d->in_c, L->dout,
                                           L->gw, L->gb, cw);
            }
            if (need_dx) {
                FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
                ft_conv1d_backward_input(&cd, L->dout, L->w, L->din_base, ci);
            }
            break;
        }
        case FT_LAYER_RELU:
            FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
            ft_relu_backward(L->out, L->dout, d->in_c * d->in_t, ci);
            break;
        case FT_LAYER_AVGPOOL1D: {
            ft_pool_dims pd;
            pool_dims(d, &pd);
            FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
            ft_avgpool1d_backward(&pd, L->dout, L->din_base, ci);
            break;
        }
        case FT_LAYER_MAXPOOL1D: {
            ft_pool_dims pd;
            pool_dims(d, &pd);
            FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
            ft_maxpool1d_backward(&pd, L->dout, L->idx, L->din_base, ci);
            break;
        }
        case FT_LAYER_GAP1D:
            FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
            ft_gap1d_backward(d->in_t, d->in_c, L->dout, L->din_base, ci);
            break;
        case FT_LAYER_FLATTEN:
            FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
            ft_flatten_backward(d->in_t, d->in_c, L->dout, L->din_base, ci);
            break;
        default: /* FT_LAYER_BATCHNORM1D */
            if (L->trainable) {
                FT_EMU_MARK(i, FT_PHASE_BACKWARD_WEIGHTS);
                ft_batchnorm1d_backward_weights(d->in_t, d->in_c, L->fold, L->mean, in, L->dout,
                                                L->gw, L->gb, cw);
            }
            if (need_dx) {
                FT_EMU_MARK(i, FT_PHASE_BACKWARD_INPUT);
                ft_batchnorm1d_backward_input(d->in_t, d->in_c, L->fold, L->dout, L->din_base,
                                              ci);
            }
            break;
        }
        FT_EMU_GLUE();
    }
}

static void zero_gradients(ft_context *ctx)
{
    int32_t i;
    for (i = 0; i < ctx->n_layers; ++i) {
        ft_layer *L = &ctx->layers[i];
        if (L->trainable) {
            memset(L->gw, 0, (size_t)ft_weight_elems(&L->d) * sizeof(float));
            memset(L->gb, 0, (size_t)ft_bias_elems(&L->d) * sizeof(float));
        }
    }
}

static int gradients_finite(const ft_context *ctx)
{
    int32_t i;
    for (i = 0; i < ctx->n_layers; ++i) {
        const ft_layer *L = &ctx->layers[i];
        if (L->trainable && (!ft_all_finite(L->gw, ft_weight_elems(&L->d)) ||
                             !ft_all_finite(L->gb, ft_bias_elems(&L->d)))) {
            return 0;
        }
    }
    return 1;
}

/*
 * One batch: samples x + sel[q] * sample_elems (sel == NULL: q), labels likewise. Inputs are
 * validated by the caller.
 */
/* One optimizer step on every trained layer from the accumulated gradients (zeroed after). */
static void update_parameters(ft_context *ctx)
{
    const ft_train_config *cfg = &ctx->cfg;
    float step_size = 0.0f, bc2_sqrt = 0.0f;
    int32_t i;

    ctx->step += 1;
    if (cfg->optimizer == FT_OPT_ADAM) {
        /* torch.optim.Adam: the bias corrections in double, applied to float32 state. */
        const double t = (double)ctx->step;
        step_size = (float)((double)cfg->lr / (1.0 - pow((double)cfg->beta1, t)));
        bc2_sqrt = (float)sqrt(1.0 - pow((double)cfg->beta2, t));
    }
    for (i = 0; i < ctx->n_layers; ++i) {
        ft_layer *L = &ctx->layers[i];
        ft_op_counts *cu = counter(ctx, i, FT_PHASE_UPDATE);
        const int32_t nw = (int32_t)ft_weight_elems(&L->d), nb = (int32_t)ft_bias_elems(&L->d);
        if (!L->trainable) {
            continue;
        }
        FT_EMU_MARK(i, FT_PHASE_UPDATE);
        if (cfg->optimizer == FT_OPT_ADAM) {
            ft_adam_update(nw, step_size, bc2_sqrt, cfg, L->w, L->gw, L->vw, L->sw, cu);
            ft_adam_update(nb, step_size, bc2_sqrt, cfg, L->b, L->gb, L->vb, L->sb, cu);
        } else {
            ft_sgd_update(nw, cfg->lr, cfg->momentum, cfg->weight_decay, L->w, L->gw, L->vw, cu);
            ft_sgd_update(nb, cfg->lr, cfg->momentum, cfg->weight_decay, L->b, L->gb, L->vb, cu);
        }
        FT_EMU_GLUE();
    }
}

/* One batch, FT_ERR_NUMERIC (no argument: what is not finite, and its sample) on a NaN or Inf. */
static ft_status run_batch(ft_context *ctx, const float *x, const int32_t *y,
                           const int32_t *sel, int32_t n, float *loss, ft_error *err)
{
    const int64_t sample = (int64_t)ctx->in_c * ctx->in_t;
    const int32_t k = ctx->n_classes, last = ctx->n_layers - 1;
    ft_op_counts *lf = counter(ctx, ctx->n_layers, FT_PHASE_FORWARD);
    ft_op_counts *lb = counter(ctx, ctx->n_layers, FT_PHASE_BACKWARD_INPUT);
    float w_sum = 0.0f, inv_w, loss_sum = 0.0f;
    int32_t q;

    for (q = 0; q < n; ++q) {
        w_sum += ctx->class_w[y[sel != NULL ? sel[q] : q]];
    }
    lf->adds += n;
    lf->divs += 1;
    lf->muls += (int64_t)n + 1;
    lf->macs += n;
    lf->bytes_moved += 4 * 2 * (int64_t)n;
    if (!(w_sum > 0.0f)) {
        return ft_fail(err, FT_ERR_NUMERIC, 0, "sum of the batch's class weights", -1, w_sum, 0.0,
                       HUGE_VAL, FT_BOUND_LO_OPEN);
    }
    inv_w = 1.0f / w_sum;
    prepare_batchnorms(ctx);
    for (q = 0; q < n; ++q) {
        const int64_t at = sel != NULL ? sel[q] : q;
        const int32_t label = y[at];
        const float w = ctx->class_w[label];
        float nll;
        load_sample(ctx, x + at * sample);
        forward_sample(ctx, 1);
        FT_EMU_MARK(ctx->n_layers, FT_PHASE_FORWARD);
        nll = ft_softmax_xent(k, ctx->layers[last].out, label, w * inv_w, ctx->exp_buf,
                              ctx->layers[last].dout, lf, lb);
        FT_EMU_GLUE();
        if (!isfinite(nll)) {
            zero_gradients(ctx);
            return ft_fail(err, FT_ERR_NUMERIC, 0, "loss (NaN or Inf)", at, nll, NAN, NAN, 0);
        }
        loss_sum += w * nll;
        backward_sample(ctx);
    }
    *loss = loss_sum * inv_w;
    if (!isfinite(*loss) || !gradients_finite(ctx)) {
        zero_gradients(ctx);
        return ft_fail(err, FT_ERR_NUMERIC, 0, "loss or gradients (NaN or Inf)", -1, *loss, NAN,
                       NAN, 0);
    }
    update_parameters(ctx);
    return FT_OK;
}

/* The context (argument 1) and samples x [n, c, t] (argument 2; n, c, t are arguments xn to
 * xn + 2). */
static ft_status check_samples(const ft_context *ctx, const float *x, int32_t n, int32_t c,
                               int32_t t, int32_t xn, ft_error *err)
{
    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, x, 2, "x"));
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, xn, "n", -1, n, 1, INT32_MAX));
    FT_TRY(ft_in_range(err, FT_ERR_SHAPE, xn + 1, "c", -1, c, ctx->in_c, ctx->in_c));
    return ft_in_range(err, FT_ERR_SHAPE, xn + 2, "t", -1, t, ctx->in_t, ctx->in_t);
}

/* Labels y (argument 3) of the samples sel[0..n) (sel == NULL: 0..n), each in [0, K). */
static ft_status check_labels(const ft_context *ctx, const int32_t *y, const int32_t *sel,
                              int32_t n, ft_error *err)
{
    int32_t q;
    for (q = 0; q < n; ++q) {
        const int32_t at = sel != NULL ? sel[q] : q;
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 3, "y", at, y[at], 0, (int64_t)ctx->n_classes - 1));
    }
    return FT_OK;
}

/* FT_ERR_STATE unless some layer trains. */
static ft_status check_trainable(const ft_context *ctx, ft_error *err)
{
    return ctx->first_trainable >= 0
               ? FT_OK
               : ft_fail(err, FT_ERR_STATE, 1, "ctx (no trainable layer)", -1, NAN, NAN, NAN, 0);
}

ft_status ft_train_batch(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                         int32_t c, int32_t t, float *loss, ft_error *err)
{
    FT_TRY(check_samples(ctx, x, n, c, t, 4, err));
    FT_TRY(ft_need(err, y, 3, "y"));
    FT_TRY(ft_need(err, loss, 7, "loss"));
    FT_TRY(check_trainable(ctx, err));
    FT_TRY(check_labels(ctx, y, NULL, n, err));
    return run_batch(ctx, x, y, NULL, n, loss, err);
}

ft_status ft_train_epoch(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                         int32_t c, int32_t t, const int32_t *order, int32_t n_order,
                         int32_t batch_size, float *mean_loss, ft_error *err)
{
    float total = 0.0f;
    int32_t q, start, n_batches = 0;

    FT_TRY(ft_check_ctx(ctx, err));
    FT_TRY(ft_need(err, order, 7, "order"));
    FT_TRY(ft_need(err, mean_loss, 10, "mean_loss"));
    if (x == NULL && y == NULL) {
        FT_TRY(ft_in_range(err, FT_ERR_SHAPE, 4, "n", -1, n, 1, ctx->cfg.n_stored_samples));
        x = ctx->stored_x;
        y = ctx->stored_y;
    }
    FT_TRY(check_samples(ctx, x, n, c, t, 4, err));
    FT_TRY(ft_need(err, y, 3, "y"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 8, "n_order", -1, n_order, 1, INT32_MAX));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 9, "batch_size", -1, batch_size, 1, INT32_MAX));
    FT_TRY(check_trainable(ctx, err));
    for (q = 0; q < n_order; ++q) {
        FT_TRY(ft_in_range(err, FT_ERR_ARG, 7, "order", q, order[q], 0, (int64_t)n - 1));
    }
    FT_TRY(check_labels(ctx, y, order, n_order, err));
    for (start = 0; start < n_order; start += batch_size) {
        const int32_t m = n_order - start < batch_size ? n_order - start : batch_size;
        float loss;
        FT_TRY(run_batch(ctx, x, y, order + start, m, &loss, err));
        total += loss;
        ++n_batches;
    }
    *mean_loss = total / (float)n_batches;
    return FT_OK;
}

ft_status ft_logits(ft_context *ctx, const float *x, int32_t n, int32_t c, int32_t t,
                    float *logits, ft_error *err)
{
    const int64_t sample = (int64_t)c * t;
    int32_t q, i, k;
    FT_TRY(check_samples(ctx, x, n, c, t, 3, err));
    FT_TRY(ft_need(err, logits, 6, "logits"));
    k = ctx->n_classes;
    prepare_batchnorms(ctx);
    for (q = 0; q < n; ++q) {
        const float *z;
        load_sample(ctx, x + q * sample);
        forward_sample(ctx, 0);
        z = ctx->layers[ctx->n_layers - 1].out;
        for (i = 0; i < k; ++i) {
            if (!isfinite(z[i])) {
                return ft_fail(err, FT_ERR_NUMERIC, 0, "logits (NaN or Inf)", q, z[i], NAN, NAN,
                               0);
            }
            logits[(int64_t)q * k + i] = z[i];
        }
    }
    return FT_OK;
}

ft_status ft_store_samples(ft_context *ctx, const float *x, const int32_t *y, int32_t n,
                           int32_t c, int32_t t, int32_t first, ft_error *err)
{
    const int64_t sample = (int64_t)c * t;
    FT_TRY(check_samples(ctx, x, n, c, t, 4, err));
    FT_TRY(ft_need(err, y, 3, "y"));
    FT_TRY(ft_in_range(err, FT_ERR_ARG, 7, "first", -1, first, 0,
                       (int64_t)ctx->cfg.n_stored_samples - n));
    FT_TRY(check_labels(ctx, y, NULL, n, err));
    memcpy(ctx->stored_x + (int64_t)first * sample, x, (size_t)(n * sample) * sizeof(float));
    memcpy(ctx->stored_y + first, y, (size_t)n * sizeof(int32_t));
    return FT_OK;
}
