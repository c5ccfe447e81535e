/*
 * fh_icount.c - a QEMU TCG plugin that counts every executed guest instruction by mnemonic and
 * by region, for the fedhar emulator checks (fedhar/ondevice/emulator.py).
 *
 * Arguments (-plugin fh_icount.so,ARG=...):
 *   out=PATH            where the counts are written at exit
 *   marker=LO:HI        address range [LO, HI) of the harness's ft_emu_mark(): its
 *                       instructions are not counted, its stores switch the region
 *   marks=BASE:N        the harness's fh_emu_marks[N] words: a store to BASE + 4 r makes r the
 *                       current region
 *
 * At translation each instruction gets a key: its mnemonic without the .w/.n width suffix,
 * then "#N" for the N registers of a register list (push, pop, ldm, stm, vpush, vpop, vldm,
 * vstm), "@d" when its first operand (or first listed register) is a double register,
 * "!pc" when a list holds pc, and "^p" for a load or store right after another one in the
 * same block (the Cortex-M4 pipelines such neighbours, TRM DDI 0439B 3.3.1). At
 * execution every instruction of a block adds 1 to (current region, key). A block that does
 * not start where the previous one ended was reached by a taken branch (or an exception),
 * which is counted per region too. The output has one line per key (K id key), per non-zero
 * count (C region id count) and per region with taken branches (T region count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

FH_EXPORT int qemu_plugin_version = 1;

#define MAX_KEYS 1024
#define MAX_REGIONS 4096

typedef struct {
    uint64_t start, end;
    int marker;
    uint32_t n;
    uint16_t key[];
} tb_rec;

static char *keys[MAX_KEYS];
static uint32_t n_keys;
static uint64_t *counts; /* [MAX_REGIONS * MAX_KEYS] */
static uint64_t taken[MAX_REGIONS];
static uint64_t marker_lo, marker_hi, marks_base, marks_n;
static char out_path[4096];
static uint32_t region;
static uint64_t prev_end = UINT64_MAX;
static int after_marker;
static int overflow;

static uint16_t key_id(const char *key)
{
    uint32_t i;
    for (i = 0; i < n_keys; ++i) {
        if (strcmp(keys[i], key) == 0) {
            return (uint16_t)i;
        }
    }
    if (n_keys == MAX_KEYS) {
        overflow = 1;
        return (uint16_t)(MAX_KEYS - 1);
    }
    keys[n_keys] = strdup(key);
    return (uint16_t)n_keys++;
}

/* Registers in a "{r4, r5, lr}" or "{s16-s31}" list. */
static int list_regs(const char *list, int *has_pc)
{
    int n = 0;
    const char *p = list + 1;
    while (*p != '\0' && *p != '}') {
        char name[16];
        size_t len = strcspn(p, ",}");
        size_t k;
        const char *dash;
        if (len >= sizeof name) {
            len = sizeof name - 1;
        }
        for (k = 0; k < len && p[k] == ' '; ++k) {
        }
        memcpy(name, p + k, len - k);
        name[len - k] = '\0';
        dash = strchr(name, '-');
        if (dash != NULL) {
            n += atoi(dash + 2) - atoi(name + 1) + 1;
        } else {
            n += 1;
        }
        if (strcmp(name, "pc") == 0) {
            *has_pc = 1;
        }
        p += len;
        if (*p == ',') {
            ++p;
        }
    }
    return n;
}

/* A load or store (single or multiple) by its mnemonic. */
static int is_memory(const char *mnem)
{
    static const char *const prefixes[] = {"ldr", "str", "ldm", "stm", "push", "pop", "vldr",
                                           "vstr", "vldm", "vstm", "vpush", "vpop"};
    size_t i;
    for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; ++i) {
        if (strncmp(mnem, prefixes[i], strlen(prefixes[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

static void make_key(const char *disas, int after_memory, char *key, size_t size)
{
    char mnem[32];
    size_t len = strcspn(disas, " \t");
    const char *ops = disas + len, *brace;
    int has_pc = 0;
    if (len >= sizeof mnem) {
        len = sizeof mnem - 1;
    }
    memcpy(mnem, disas, len);
    mnem[len] = '\0';
    if (len > 2 && (strcmp(mnem + len - 2, ".w") == 0 || strcmp(mnem + len - 2, ".n") == 0)) {
        mnem[len - 2] = '\0';
    }
    while (*ops == ' ' || *ops == '\t') {
        ++ops;
    }
    brace = strchr(ops, '{');
    if (brace != NULL) {
        const int n = list_regs(brace, &has_pc);
        const char *first = brace + 1 + strspn(brace + 1, " ");
        snprintf(key, size, "%s#%d%s%s", mnem, n, first[0] == 'd' ? "@d" : "",
                 has_pc ? "!pc" : "");
    } else if (ops[0] == 'd' && ops[1] >= '0' && ops[1] <= '9') {
        snprintf(key, size, "%s@d", mnem);
    } else {
        snprintf(key, size, "%s", mnem);
    }
    if (after_memory && is_memory(mnem)) {
        strncat(key, "^p", size - strlen(key) - 1);
    }
}

static int disas_is_memory(const char *disas)
{
    char mnem[32];
    size_t len = strcspn(disas, " \t");
    if (len >= sizeof mnem) {
        len = sizeof mnem - 1;
    }
    memcpy(mnem, disas, len);
    mnem[len] = '\0';
    return is_memory(mnem);
}

static void on_store(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud)
{
    (void)vcpu;
    (void)info;
    (void)ud;
    if (vaddr >= marks_base && vaddr < marks_base + 4 * marks_n) {
        region = (uint32_t)((vaddr - marks_base) / 4);
    }
}

static void on_exec(unsigned int vcpu, void *ud)
{
    const tb_rec *rec = ud;
    uint64_t *row;
    uint32_t i;
    (void)vcpu;
    if (rec->marker) {
        after_marker = 1;
        return;
    }
    if (rec->start != prev_end && !after_marker) {
        taken[region] += 1;
    }
    after_marker = 0;
    prev_end = rec->end;
    row = counts + (uint64_t)region * MAX_KEYS;
    for (i = 0; i < rec->n; ++i) {
        row[rec->key[i]] += 1;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const size_t n = qemu_plugin_tb_n_insns(tb);
    tb_rec *rec = malloc(sizeof(tb_rec) + n * sizeof(uint16_t));
    size_t i;
    int prev_memory;
    (void)id;
    if (rec == NULL) {
        overflow = 1;
        return;
    }
    rec->start = qemu_plugin_tb_vaddr(tb);
    rec->end = rec->start;
    rec->marker = rec->start >= marker_lo && rec->start < marker_hi;
    rec->n = 0;
    prev_memory = 0;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        rec->end = qemu_plugin_insn_vaddr(insn) + qemu_plugin_insn_size(insn);
        if (rec->marker) {
            qemu_plugin_register_vcpu_mem_cb(insn, on_store, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_W, NULL);
        } else {
            char *disas = qemu_plugin_insn_disas(insn);
            const char *text = disas != NULL ? disas : "?";
            char key[96];
            make_key(text, prev_memory, key, sizeof key);
            prev_memory = disas_is_memory(text);
            free(disas);
            rec->key[rec->n++] = key_id(key);
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, rec);
}

static void on_exit(qemu_plugin_id_t id, void *ud)
{
    FILE *f = fopen(out_path, "w");
    uint32_t r, k;
    (void)id;
    (void)ud;
    if (f == NULL) {
        qemu_plugin_outs("fh_icount: cannot write the counts file\n");
        return;
    }
    fprintf(f, "V 1 %d\n", overflow);
    for (k = 0; k < n_keys; ++k) {
        fprintf(f, "K %u %s\n", k, keys[k]);
    }
    for (r = 0; r < MAX_REGIONS; ++r) {
        for (k = 0; k < n_keys; ++k) {
            const uint64_t c = counts[(uint64_t)r * MAX_KEYS + k];
            if (c != 0) {
                fprintf(f, "C %u %u %llu\n", r, k, (unsigned long long)c);
            }
        }
        if (taken[r] != 0) {
            fprintf(f, "T %u %llu\n", r, (unsigned long long)taken[r]);
        }
    }
    fclose(f);
}

static int parse_range(const char *v, uint64_t *a, uint64_t *b)
{
    char *end;
    *a = strtoull(v, &end, 0);
    if (*end != ':') {
        return -1;
    }
    *b = strtoull(end + 1, &end, 0);
    return *end == '\0' ? 0 : -1;
}

FH_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                  char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        const char *a = argv[i];
        if (strncmp(a, "out=", 4) == 0 && strlen(a + 4) < sizeof out_path) {
            strcpy(out_path, a + 4);
        } else if (strncmp(a, "marker=", 7) == 0) {
            if (parse_range(a + 7, &marker_lo, &marker_hi) != 0) {
                return -1;
            }
        } else if (strncmp(a, "marks=", 6) == 0) {
            if (parse_range(a + 6, &marks_base, &marks_n) != 0 || marks_n > MAX_REGIONS) {
                return -1;
            }
        } else {
            fprintf(stderr, "fh_icount: unknown argument %s\n", a);
            return -1;
        }
    }
    if (out_path[0] == '\0') {
        fprintf(stderr, "fh_icount: out=PATH is required\n");
        return -1;
    }
    counts = calloc((size_t)MAX_REGIONS * MAX_KEYS, sizeof(uint64_t));
    if (counts == NULL) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
