/*
 * main.c - fedhar's personalized model on a Cortex-M4F: unpack it into the training library,
 * classify one window, run one TL step on it, classify it again. Written by fedhar export.
 *
 * Built for QEMU (-DFH_SEMIHOSTING) it writes fh_firmware_out.bin (logits before, loss,
 * logits after) and exits with 0 when the logits equal the host's (fedhar_model.h) within
 * float32 rounding (1e-4 relative), 1 if not.
 * On a board the results stay in fh_result for a debugger.
 */
#include <math.h>
#include <string.h>

#include "fedhar_model.h"
#include "fedhar_train.h"
#ifdef FH_SEMIHOSTING
#include "semihost.h"
#endif

typedef struct {
    int32_t status;
    int32_t predicted;
    float logits[FH_N_CLASSES];
    float loss;
    float logits_after[FH_N_CLASSES];
    int32_t matches_host;
} fh_result_t;

volatile fh_result_t fh_result;
static uint64_t arena[FH_ARENA_BYTES / 8 + 1];
static float tensor[FH_MAX_TENSOR];

/* The model payload into the context, as fedhar.wire.codec.decode_model unpacks it. */
static ft_status load_model(ft_context *ctx)
{
    int32_t q8 = 0, q32 = 0, f32 = 0, scale = 0, bias = 0, t, i;
    int32_t n_channel_scales = 0;
    ft_status st = FT_OK;
    for (t = 0; t < FH_N_TENSORS; ++t) {
        if (fh_tensors[t][2] == 1) {
            n_channel_scales += fh_tensors[t][4];
        }
    }
    for (t = 0; t < FH_N_TENSORS && st == FT_OK; ++t) {
        const int32_t role = fh_tensors[t][2], n = fh_tensors[t][3], rows = fh_tensors[t][4];
        if (role == 1) {
            const int32_t per_row = n / rows;
            for (i = 0; i < n; ++i) {
                tensor[i] = (float)fh_q8[q8 + i] * fh_scale[scale + i / per_row];
            }
            q8 += n;
            scale += rows;
        } else if (role == 2) {
            const double s = (double)fh_scale[n_channel_scales + bias];
            for (i = 0; i < n; ++i) {
                tensor[i] = (float)((double)fh_q32[q32 + i] * s);
            }
            q32 += n;
            bias += 1;
        } else {
            memcpy(tensor, &fh_f32[f32], (size_t)n * sizeof(float));
            f32 += n;
        }
        st = ft_set_param(ctx, fh_tensors[t][0], fh_tensors[t][1], tensor, n, NULL);
    }
    return st;
}

static int32_t argmax(const volatile float *z)
{
    int32_t k, best = 0;
    for (k = 1; k < FH_N_CLASSES; ++k) {
        if (z[k] > z[best]) {
            best = k;
        }
    }
    return best;
}

int main(void)
{
    const ft_train_config cfg = {FH_TL_LR, 0.0f, 0.0f, 0, FT_OPT_SGD, 0.0f, 0.0f, 0.0f};
    const int32_t label = FH_LABEL;
    float logits[FH_N_CLASSES], loss = 0.0f;
    ft_context *ctx = NULL;
    int32_t k, same = 1;
    ft_status st = ft_context_init(arena, sizeof arena, fh_layers, FH_N_LAYERS, &cfg,
                                   fh_trainable, &ctx, NULL);
    if (st == FT_OK) {
        st = load_model(ctx);
    }
    if (st == FT_OK) {
        st = ft_logits(ctx, fh_window, 1, FH_IN_C, FH_IN_T, logits, NULL);
    }
    for (k = 0; k < FH_N_CLASSES; ++k) {
        fh_result.logits[k] = logits[k];
        /* The host sums in vector tiles, this build in plain loops: float32 rounding apart. */
        same = same && fabsf(logits[k] - fh_expected_logits[k]) <=
                           1e-4f * (1.0f + fabsf(fh_expected_logits[k]));
    }
    fh_result.predicted = argmax(fh_result.logits);
    if (st == FT_OK) {
        st = ft_train_batch(ctx, fh_window, &label, 1, FH_IN_C, FH_IN_T, &loss, NULL);
    }
    if (st == FT_OK) {
        st = ft_logits(ctx, fh_window, 1, FH_IN_C, FH_IN_T, logits, NULL);
    }
    for (k = 0; k < FH_N_CLASSES; ++k) {
        fh_result.logits_after[k] = logits[k];
    }
    fh_result.loss = loss;
    fh_result.status = (int32_t)st;
    fh_result.matches_host = same;
#ifdef FH_SEMIHOSTING
    {
        const int32_t fd = sh_open("fh_firmware_out.bin", 1);
        if (fd < 0) {
            return 2;
        }
        (void)sh_write(fd, (const void *)&fh_result, (int32_t)sizeof fh_result);
        (void)sh_close(fd);
    }
    return st == FT_OK && same ? 0 : 1;
#else
    for (;;) {
    }
#endif
}
