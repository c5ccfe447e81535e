/*
 * ft_check.h - private helpers that validate an entry point's arguments and fill its ft_error
 * record (fedhar_types.h); shared by the training (ft_*.c) and inference (fh_slim.c) sources.
 * Argument numbers are 1-based positions in the entry point's prototype.
 */
#ifndef FT_CHECK_H
#define FT_CHECK_H

#include <stddef.h>

#include "fedhar_types.h"

/* Returns from the enclosing function with the status of expr unless it is FT_OK. */
#define FT_TRY(expr)                      \
    do {                                  \
        const ft_status ft_try_ = (expr); \
        if (ft_try_ != FT_OK) {           \
            return ft_try_;               \
        }                                 \
    } while (0)

/* Records a failure of argument arg (its name, element index or -1, the value found and the
 * accepted range, open at the FT_BOUND_* sides) in err (may be NULL); returns st. */
ft_status ft_fail(ft_error *err, ft_status st, int32_t arg, const char *name, int64_t index,
                  double value, double lo, double hi, int32_t open);

/* FT_ERR_NULL naming pointer argument arg (value and range NaN). */
ft_status ft_fail_null(ft_error *err, int32_t arg, const char *name);

/* Records success in err (may be NULL); returns FT_OK. Every entry point starts with it. */
ft_status ft_record_ok(ft_error *err);

/*
 * The checks below are inline so that the passing path is a compare and a branch, as it was
 * before the record existed: the validation loops (labels, order, shifts) run on every call and
 * the Cortex-M4 instruction model counts them. Only a failure calls out of line.
 */

static inline ft_status ft_ok(ft_error *err)
{
    return err != NULL ? ft_record_ok(err) : FT_OK;
}

/* FT_ERR_NULL for pointer argument arg unless p is set. */
static inline ft_status ft_need(ft_error *err, const void *p, int32_t arg, const char *name)
{
    return p != NULL ? FT_OK : ft_fail_null(err, arg, name);
}

/* FT_OK if lo <= v <= hi, else ft_fail with st. */
static inline ft_status ft_in_range(ft_error *err, ft_status st, int32_t arg, const char *name,
                                    int64_t index, int64_t v, int64_t lo, int64_t hi)
{
    if (v >= lo && v <= hi) {
        return FT_OK;
    }
    return ft_fail(err, st, arg, name, index, (double)v, (double)lo, (double)hi, 0);
}

/* FT_OK if float v is in [lo, hi] (open at the FT_BOUND_* sides of open; NaN never is), else
 * ft_fail with FT_ERR_ARG. Float compares: the Cortex-M4's FPU has no double precision. */
static inline ft_status ft_in_range_f(ft_error *err, int32_t arg, const char *name,
                                      int64_t index, float v, float lo, float hi, int32_t open)
{
    const int above = (open & FT_BOUND_LO_OPEN) ? v > lo : v >= lo;
    const int below = (open & FT_BOUND_HI_OPEN) ? v < hi : v <= hi;
    if (above && below) {
        return FT_OK;
    }
    return ft_fail(err, FT_ERR_ARG, arg, name, index, (double)v, (double)lo, (double)hi, open);
}

#endif /* FT_CHECK_H */
