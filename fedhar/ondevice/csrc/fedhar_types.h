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
 *  counting", gives the exact rules of every kernel). */
typedef struct {
    int64_t macs;        /**< multiply-accumulates a += b * c */
    int64_t adds;        /**< additions and subtractions outside MACs */
    int64_t muls;        /**< multiplications outside MACs */
    int64_t divs;        /**< divisions */
    int64_t exps;        /**< transcendental calls: expf, logf, sqrtf */
    int64_t cmps;        /**< comparisons (max, ReLU, argmax, clamps) */
    int64_t bytes_moved; /**< bytes of array loads + stores in the reference loop nest */
} ft_op_counts;

/** Static name of a status ("FT_OK", ...); "FT_UNKNOWN_STATUS" for any other value. */
const char *ft_status_str(int32_t status);

#ifdef __cplusplus
}
#endif

#endif /* FEDHAR_TYPES_H */
