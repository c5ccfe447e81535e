/*
 * harness.c - runs the fedhar C library on a bare-metal Cortex-M4 (QEMU mps2-an386) for the
 * emulator checks of fedhar/ondevice/emulator.py.
 *
 * It reads one job from the host file "fh_job.bin" (semihosting), runs it, and writes the
 * results to "fh_out.bin". All numbers are little-endian; a tensor is u32 count, u32 element
 * bytes, then the elements padded to 4 bytes (count 0 means NULL). Jobs:
 *
 *   1 train: n_layers, ft_layer_desc[n], ft_train_config, tensor trainable (u8), n_params x
 *     (layer, param, tensor f32), tensor class weights, n, c, t, tensor x [n,c,t], tensor y [n],
 *     steps (ft_train_batch calls on x, y), logits flag (ft_logits on x after training).
 *     Out: status, steps, loss[steps], logits tensor, every parameter tensor in input order,
 *     the counters ((n_layers + 1) * 4 ft_op_counts), the arena bytes and the memory peaks.
 *   2 sliced float32 / 3 sliced int8 inference: fh_slim_net_dims, per conv its dims and
 *     tensors (f32: weight, scale, shift; s8: weight, bias, mult, rshift), per dense its dims
 *     and tensors (f32: weight, bias; s8: weight, bias, mult, rshift, logit_scale), n, tensor x,
 *     the margin threshold. Out: status, logits, margins, argmax, easy flags, the net's and the
 *     policy's ft_op_counts, the scratch bytes.
 *   4 integer / 5 dynamic-range compressed inference (fh_qnet.h): in_channels, in_length,
 *     n_classes, n_layers, per layer fh_qnet_dims and (4) w_bits, in_bits, out_bits and the
 *     tensors weight (u8), bias, mult, rshift (i8), logit_scale, or (5) relu and the tensors
 *     weight (i8), w_scale, bias; then n, tensor x (int8 or float32). Out: status, logits,
 *     the ft_op_counts, the fh_qnet_memory.
 *
 * ft_emu_mark() writes one word of fh_emu_marks[]; the QEMU plugin watches those stores and
 * attributes executed instructions to region 2 + 4 * row + phase (1: glue code inside the
 * library's calls, 0: this harness), plus FH_LOGITS_BASE for the ft_logits pass.
 */
#include <stdint.h>
#include <string.h>

#include "fedhar_train.h"
#include "fh_qnet.h"
#include "fh_slim.h"
#include "semihost.h"

#define FH_REGIONS 2048
#define FH_LOGITS_BASE 1024

volatile uint32_t fh_emu_marks[FH_REGIONS];
static int32_t region_base;

__attribute__((noinline)) void ft_emu_mark(int32_t row, int32_t phase)
{
    const int32_t r = row < 0 ? row + 2 : 2 + 4 * row + phase;
    fh_emu_marks[region_base + r] = 1u;
}

extern uint8_t _heap_start, _heap_end;
static uint8_t *heap_top = &_heap_start;

static void fail(const char *what, int32_t code) __attribute__((noreturn));
static void fail(const char *what, int32_t code)
{
    sh_puts("fedhar harness: ");
    sh_puts(what);
    sh_puts("\n");
    sh_exit(code);
}

static void *take(uint32_t bytes)
{
    uint8_t *p = heap_top;
    bytes = (bytes + 7u) & ~7u;
    if (bytes > (uint32_t)(&_heap_end - heap_top)) {
        fail("out of memory", 3);
    }
    heap_top += bytes;
    return p;
}

/* ---- reading the job -------------------------------------------------------------------- */
static const uint8_t *in_at, *in_end;

static void get(void *dst, uint32_t n)
{
    if (n > (uint32_t)(in_end - in_at)) {
        fail("truncated job file", 4);
    }
    memcpy(dst, in_at, n);
    in_at += n;
}

static int32_t get_i32(void)
{
    int32_t v;
    get(&v, 4);
    return v;
}

/* A tensor in place (the job buffer is 8-byte aligned and tensors are padded to 4). */
static const void *get_tensor(uint32_t elem_bytes, uint32_t *count)
{
    const uint32_t n = (uint32_t)get_i32(), e = (uint32_t)get_i32();
    const void *p = in_at;
    const uint32_t bytes = (n * e + 3u) & ~3u;
    if (n != 0 && e != elem_bytes) {
        fail("tensor element size", 4);
    }
    if (bytes > (uint32_t)(in_end - in_at)) {
        fail("truncated tensor", 4);
    }
    in_at += bytes;
    if (count != NULL) {
        *count = n;
    }
    return n == 0 ? NULL : p;
}

/* ---- writing the results ---------------------------------------------------------------- */
static int32_t out_fd = -1;

static void put(const void *src, uint32_t n)
{
    if (sh_write(out_fd, src, (int32_t)n) != 0) {
        fail("cannot write fh_out.bin", 5);
    }
}

static void put_i32(int32_t v) { put(&v, 4); }

static void put_f32s(const float *v, int32_t n)
{
    put_i32(n);
    put(v, 4u * (uint32_t)n);
}

/* ---- jobs ------------------------------------------------------------------------------- */
typedef struct {
    int32_t layer, param;
    const float *data;
    uint32_t n;
} fh_param;

static int32_t run_train(void)
{
    const int32_t n_layers = get_i32();
    ft_layer_desc *layers;
    ft_train_config cfg;
    const uint8_t *trainable;
    const float *class_w, *x;
    const int32_t *y;
    fh_param *params;
    ft_context *ctx = NULL;
    ft_op_counts *counts;
    int64_t arena_bytes = 0, *peak;
    int32_t n_params, n, c, t, steps, want_logits, i, k = 0, done = 0;
    uint32_t count;
    float *losses, *logits = NULL;
    void *arena;
    ft_status st;

    if (n_layers < 1 || n_layers > 250) {
        fail("n_layers", 4);
    }
    layers = take((uint32_t)n_layers * sizeof(ft_layer_desc));
    get(layers, (uint32_t)n_layers * sizeof(ft_layer_desc));
    get(&cfg, sizeof cfg);
    trainable = get_tensor(1, NULL);
    n_params = get_i32();
    params = take((uint32_t)(n_params > 0 ? n_params : 1) * sizeof(fh_param));
    for (i = 0; i < n_params; ++i) {
        params[i].layer = get_i32();
        params[i].param = get_i32();
        params[i].data = get_tensor(4, &params[i].n);
    }
    class_w = get_tensor(4, &count);
    k = (int32_t)count;
    n = get_i32();
    c = get_i32();
    t = get_i32();
    x = get_tensor(4, NULL);
    y = get_tensor(4, NULL);
    steps = get_i32();
    want_logits = get_i32();
    losses = take(4u * (uint32_t)(steps > 0 ? steps : 1));

    st = ft_context_get_buffer_size(layers, n_layers, &cfg, trainable, &arena_bytes, NULL, NULL);
    if (st == FT_OK) {
        arena = take((uint32_t)arena_bytes);
        st = ft_context_init(arena, arena_bytes, layers, n_layers, &cfg, trainable, &ctx, NULL);
    }
    for (i = 0; st == FT_OK && i < n_params; ++i) {
        st = ft_set_param(ctx, params[i].layer, params[i].param, params[i].data, params[i].n, NULL);
    }
    if (st == FT_OK && class_w != NULL) {
        st = ft_set_class_weights(ctx, class_w, k, NULL);
    }
    if (st == FT_OK) {
        st = ft_reset_counts(ctx, NULL);
    }
    for (; st == FT_OK && done < steps; ++done) {
        ft_emu_mark(-1, 0);
        st = ft_train_batch(ctx, x, y, n, c, t, &losses[done], NULL);
        ft_emu_mark(-2, 0);
        if (st != FT_OK) {
            break;
        }
    }
    k = layers[n_layers - 1].out_c;
    if (st == FT_OK && want_logits) {
        logits = take(4u * (uint32_t)(n * k));
        region_base = FH_LOGITS_BASE;
        ft_emu_mark(-1, 0);
        st = ft_logits(ctx, x, n, c, t, logits, NULL);
        ft_emu_mark(-2, 0);
        region_base = 0;
    }

    put_i32((int32_t)st);
    put_i32(done);
    put(losses, 4u * (uint32_t)done);
    put_f32s(logits, logits != NULL && st == FT_OK ? n * k : 0);
    put_i32(ctx != NULL ? n_params : 0);
    for (i = 0; ctx != NULL && i < n_params; ++i) {
        float *buf = take(4u * params[i].n);
        if (ft_get_param(ctx, params[i].layer, params[i].param, buf, params[i].n, NULL) != FT_OK) {
            fail("ft_get_param", 6);
        }
        put_f32s(buf, (int32_t)params[i].n);
    }
    counts = take((uint32_t)(n_layers + 1) * FT_PHASE_COUNT * sizeof(ft_op_counts));
    peak = take((uint32_t)(n_layers + 1) * FT_MEM_COUNT * sizeof(int64_t));
    if (ctx != NULL) {
        (void)ft_get_counts(ctx, counts, (int64_t)(n_layers + 1) * FT_PHASE_COUNT, NULL);
        (void)ft_get_memory(ctx, peak, (int64_t)(n_layers + 1) * FT_MEM_COUNT, NULL, NULL, NULL);
    } else {
        memset(counts, 0, (size_t)(n_layers + 1) * FT_PHASE_COUNT * sizeof(ft_op_counts));
        memset(peak, 0, (size_t)(n_layers + 1) * FT_MEM_COUNT * sizeof(int64_t));
    }
    put_i32((n_layers + 1) * FT_PHASE_COUNT);
    put(counts, (uint32_t)(n_layers + 1) * FT_PHASE_COUNT * sizeof(ft_op_counts));
    put(&arena_bytes, 8);
    put_i32((n_layers + 1) * FT_MEM_COUNT);
    put(peak, (uint32_t)(n_layers + 1) * FT_MEM_COUNT * sizeof(int64_t));
    return 0;
}

static int32_t run_slim(int s8)
{
    fh_slim_net_dims dims;
    fh_slim_conv_f32 *cf = NULL;
    fh_slim_dense_f32 *df = NULL;
    fh_slim_conv_s8 *cs = NULL;
    fh_slim_dense_s8 *ds = NULL;
    fh_slim_net_f32 nf;
    fh_slim_net_s8 ns;
    ft_op_counts ops, ops_margin;
    const void *x;
    float th, *logits, *margin;
    int32_t *argmax, *easy32, n, i, bytes = 0, k;
    uint8_t *easy;
    void *buffer;
    ft_status st;

    get(&dims, sizeof dims);
    if (dims.n_conv < 1 || dims.n_conv > 64 || dims.n_dense < 1 || dims.n_dense > 64) {
        fail("slim layer counts", 4);
    }
    if (s8) {
        cs = take((uint32_t)dims.n_conv * sizeof *cs);
        ds = take((uint32_t)dims.n_dense * sizeof *ds);
    } else {
        cf = take((uint32_t)dims.n_conv * sizeof *cf);
        df = take((uint32_t)dims.n_dense * sizeof *df);
    }
    for (i = 0; i < dims.n_conv; ++i) {
        fh_slim_conv_dims d;
        get(&d, sizeof d);
        if (s8) {
            cs[i].dims = d;
            cs[i].weight = get_tensor(1, NULL);
            cs[i].bias = get_tensor(4, NULL);
            cs[i].mult = get_tensor(4, NULL);
            cs[i].rshift = get_tensor(4, NULL);
        } else {
            cf[i].dims = d;
            cf[i].weight = get_tensor(4, NULL);
            cf[i].scale = get_tensor(4, NULL);
            cf[i].shift = get_tensor(4, NULL);
        }
    }
    for (i = 0; i < dims.n_dense; ++i) {
        fh_slim_dense_dims d;
        get(&d, sizeof d);
        if (s8) {
            ds[i].dims = d;
            ds[i].weight = get_tensor(1, NULL);
            ds[i].bias = get_tensor(4, NULL);
            ds[i].mult = get_tensor(4, NULL);
            ds[i].rshift = get_tensor(4, NULL);
            ds[i].logit_scale = get_tensor(4, NULL);
        } else {
            df[i].dims = d;
            df[i].weight = get_tensor(4, NULL);
            df[i].bias = get_tensor(4, NULL);
        }
    }
    n = get_i32();
    x = get_tensor(s8 ? 1u : 4u, NULL);
    get(&th, 4);
    k = s8 ? ds[dims.n_dense - 1].dims.n_out : df[dims.n_dense - 1].dims.n_out;
    logits = take(4u * (uint32_t)(n * k + 1));
    margin = take(4u * (uint32_t)(n + 1));
    argmax = take(4u * (uint32_t)(n + 1));
    easy32 = take(4u * (uint32_t)(n + 1));
    easy = take((uint32_t)(n + 1));
    memset(&ops, 0, sizeof ops);
    memset(&ops_margin, 0, sizeof ops_margin);
    nf.dims = dims;
    nf.conv = cf;
    nf.dense = df;
    ns.dims = dims;
    ns.conv = cs;
    ns.dense = ds;
    st = s8 ? fh_slim_s8_get_buffer_size(&ns, &bytes, NULL)
            : fh_slim_f32_get_buffer_size(&nf, &bytes, NULL);
    if (st == FT_OK) {
        buffer = take((uint32_t)bytes);
        ft_emu_mark(-1, 0);
        st = s8 ? fh_slim_forward_s8(&ns, x, n, logits, buffer, bytes, &ops, NULL)
                : fh_slim_forward_f32(&nf, x, n, logits, buffer, bytes, &ops, NULL);
        ft_emu_mark(dims.n_conv + 1 + dims.n_dense, 0);
        if (st == FT_OK) {
            st = fh_slim_score_margin(logits, n, k, th, margin, argmax, easy, &ops_margin, NULL);
        }
        ft_emu_mark(-2, 0);
    }
    for (i = 0; i < n; ++i) {
        easy32[i] = easy[i];
    }
    put_i32((int32_t)st);
    put_f32s(logits, st == FT_OK ? n * k : 0);
    put_f32s(margin, st == FT_OK ? n : 0);
    put_i32(st == FT_OK ? n : 0);
    put(argmax, st == FT_OK ? 4u * (uint32_t)n : 0u);
    put_i32(st == FT_OK ? n : 0);
    put(easy32, st == FT_OK ? 4u * (uint32_t)n : 0u);
    put(&ops, sizeof ops);
    put(&ops_margin, sizeof ops_margin);
    put_i32(bytes);
    return 0;
}

static int32_t run_qnet(int dyn)
{
    fh_qnet net;
    fh_dnet dnet;
    fh_qnet_layer *ql = NULL;
    fh_dnet_layer *dl = NULL;
    fh_qnet_memory mem;
    ft_op_counts ops;
    const void *x;
    float *logits;
    int32_t header[4], n, i;
    void *buffer;
    ft_status st;

    get(header, sizeof header);
    if (header[3] < 1 || header[3] > 64 || header[2] < 1) {
        fail("qnet layer or class count", 4);
    }
    if (dyn) {
        dl = take((uint32_t)header[3] * sizeof *dl);
    } else {
        ql = take((uint32_t)header[3] * sizeof *ql);
    }
    for (i = 0; i < header[3]; ++i) {
        fh_qnet_dims d;
        get(&d, sizeof d);
        if (dyn) {
            dl[i].dims = d;
            dl[i].relu = get_i32();
            dl[i].weight = get_tensor(1, NULL);
            dl[i].w_scale = get_tensor(4, NULL);
            dl[i].bias = get_tensor(4, NULL);
        } else {
            ql[i].dims = d;
            ql[i].w_bits = get_i32();
            ql[i].in_bits = get_i32();
            ql[i].out_bits = get_i32();
            ql[i].weight = get_tensor(1, NULL);
            ql[i].bias = get_tensor(4, NULL);
            ql[i].mult = get_tensor(4, NULL);
            ql[i].rshift = get_tensor(1, NULL);
            ql[i].logit_scale = get_tensor(4, NULL);
        }
    }
    n = get_i32();
    x = get_tensor(dyn ? 4u : 1u, NULL);
    logits = take(4u * (uint32_t)(n * header[2] + 1));
    memset(&ops, 0, sizeof ops);
    memset(&mem, 0, sizeof mem);
    net.in_channels = dnet.in_channels = header[0];
    net.in_length = dnet.in_length = header[1];
    net.n_classes = dnet.n_classes = header[2];
    net.n_layers = dnet.n_layers = header[3];
    net.layers = ql;
    dnet.layers = dl;
    st = dyn ? fh_dnet_get_memory(&dnet, &mem, NULL) : fh_qnet_get_memory(&net, &mem, NULL);
    if (st == FT_OK) {
        buffer = take((uint32_t)mem.buffer + 4u);
        ft_emu_mark(-1, 0);
        st = dyn ? fh_dnet_forward(&dnet, x, n, logits, buffer, (int32_t)mem.buffer, &ops, NULL)
                 : fh_qnet_forward(&net, x, n, logits, buffer, (int32_t)mem.buffer, &ops, NULL);
        ft_emu_mark(-2, 0);
    }
    put_i32((int32_t)st);
    put_f32s(logits, st == FT_OK ? n * header[2] : 0);
    put(&ops, sizeof ops);
    put(&mem, sizeof mem);
    return 0;
}

int main(void)
{
    const int32_t fd = sh_open("fh_job.bin", 0);
    int32_t len, magic, version, job, rc;
    uint8_t *buf;
    if (fd < 0) {
        fail("cannot open fh_job.bin", 2);
    }
    len = sh_flen(fd);
    if (len < 16) {
        fail("fh_job.bin is too short", 4);
    }
    buf = take((uint32_t)len);
    if (sh_read(fd, buf, len) != len) {
        fail("cannot read fh_job.bin", 2);
    }
    (void)sh_close(fd);
    in_at = buf;
    in_end = buf + len;
    magic = get_i32();
    version = get_i32();
    job = get_i32();
    (void)get_i32();
    if (magic != 0x4D454846 || version != 1) { /* "FHEM" */
        fail("not a version-1 fedhar job file", 4);
    }
    out_fd = sh_open("fh_out.bin", 1);
    if (out_fd < 0) {
        fail("cannot create fh_out.bin", 2);
    }
    put_i32(0x4F454846); /* "FHEO" */
    if (job == 1) {
        rc = run_train();
    } else if (job == 2 || job == 3) {
        rc = run_slim(job == 3);
    } else if (job == 4 || job == 5) {
        rc = run_qnet(job == 5);
    } else {
        fail("unknown job", 4);
    }
    (void)sh_close(out_fd);
    return rc;
}
