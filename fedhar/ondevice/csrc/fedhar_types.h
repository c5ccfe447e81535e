/*
 * fedhar_types.h - types shared by every part of the fedhar on-device library (portable C99):
 * the status code that every entry point returns and the operation counters that every kernel
 * adds to. The training API (fedhar_train.h) and the width-sliced inference API (fh_slim.h)
 * both include it, so one status vocabulary and one counter layout serve the whole library.
 */
#ifndef FEDHAR_TYPES_H
#define FEDHAR_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Status code of every entry point. The values are part of the ABI (the Python binding mirrors
 * them); a new code is appended before FT_STATUS_COUNT, never inserted.
 */
typedef enum {
    FT_OK = 0,
    FT_ERR_NULL = 1,            /**< a required pointer is NULL */
    FT_ERR_SHAPE = 2,           /**< a shape or size is inconsistent or out of range */
    FT_ERR_ARENA_TOO_SMALL = 3, /**< the caller's memory (training arena or inference scratch
                                     buffer) is smaller than its _get_buffer_size reports */
    FT_ERR_ARG = 4,             /**< a scalar argument is out of its documented range */
    FT_ERR_NUMERIC = 5,         /**< NaN or Inf in a loss, logit or gradient */
    FT_ERR_STATE = 6,           /**< the call is not valid in the context's state */
    FT_STATUS_COUNT = 7
} ft_status;

/** Operation counters of one kernel call or one layer and phase (README.md, "Operation
 *  counting", gives the exact rules of every kernel). The layout is part of the ABI: a new
 *  counter is appended at the end, never inserted. */
typedef struct {
    int64_t macs;        /**< multiply-accumulates a += b * c */
    int64_t adds;        /**< additions and subtractions outside MACs */
    int64_t muls;        /**< multiplications outside MACs */
    int64_t divs;        /**< divisions */
    int64_t exps;        /**< transcendental calls: expf, logf, sqrtf */
    int64_t cmps;        /**< comparisons (max, ReLU, argmax, clamps) */
    int64_t bytes_moved; /**< bytes of array loads + stores in the reference loop nest */
    int64_t bitops;      /**< integer shift, mask, logic and popcount steps (unpacking and
                              packing sub-byte data, binary dot products); appended last */
} ft_op_counts;

/**
 * What made an entry point fail: every entry point takes an ft_error *err as its last
 * parameter (NULL: nothing is recorded) and fills it on every return, so the record belongs to
 * the call and the library keeps no state of its own (safe with many contexts and threads, and
 * on a microcontroller). On FT_OK: status FT_OK, arg 0, name "", index -1.
 *
 * name is a static string naming the argument or field, in the words of the prototype: "y",
 * "batch_size", "cfg->lr", "layers[].kernel" ("[]" stands for element index). The found value
 * and the accepted range [lo, hi] (open at a side flagged in open) are doubles, exact for
 * every int32 and float (an unbounded side is +-HUGE_VAL; all three NaN when the status has no
 * range, e.g. FT_ERR_NULL).
 */
typedef struct {
    int32_t status;   /**< the ft_status the call returned */
    int32_t arg;      /**< 1-based position of the argument in the prototype; 0: none */
    const char *name; /**< the argument or field ("" when none) */
    int64_t index;    /**< element of an array argument (sample, layer, class), -1 for none */
    double value;     /**< the value found */
    double lo;        /**< smallest accepted value */
    double hi;        /**< largest accepted value */
    int32_t open;     /**< FT_BOUND_* bits: lo and/or hi themselves are not accepted */
} ft_error;

/** Bits of ft_error.open. */
enum { FT_BOUND_LO_OPEN = 1, FT_BOUND_HI_OPEN = 2 };

/** Static name of a status ("FT_OK", ...); "FT_UNKNOWN_STATUS" for any other value. */
const char *ft_status_str(int32_t status);

#ifdef __cplusplus
}
#endif

#endif /* FEDHAR_TYPES_H */
