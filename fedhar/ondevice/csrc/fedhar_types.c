/* fedhar_types.c - names of the library's status codes, and the helpers of ft_check.h that fill
 * an entry point's ft_error record. */
#include "fedhar_types.h"

#include <math.h>
#include <stddef.h>

#include "ft_check.h"

const char *ft_status_str(int32_t status)
{
    static const char *const names[FT_STATUS_COUNT] = {
        "FT_OK",         "FT_ERR_NULL",    "FT_ERR_SHAPE", "FT_ERR_ARENA_TOO_SMALL",
        "FT_ERR_ARG",    "FT_ERR_NUMERIC", "FT_ERR_STATE",
    };
    if (status < 0 || status >= FT_STATUS_COUNT) {
        return "FT_UNKNOWN_STATUS";
    }
    return names[status];
}

ft_status ft_fail(ft_error *err, ft_status st, int32_t arg, const char *name, int64_t index,
                  double value, double lo, double hi, int32_t open)
{
    if (err != NULL) {
        err->status = (int32_t)st;
        err->arg = arg;
        err->name = name;
        err->index = index;
        err->value = value;
        err->lo = lo;
        err->hi = hi;
        err->open = open;
    }
    return st;
}

ft_status ft_record_ok(ft_error *err)
{
    return ft_fail(err, FT_OK, 0, "", -1, NAN, NAN, NAN, 0);
}

ft_status ft_fail_null(ft_error *err, int32_t arg, const char *name)
{
    return ft_fail(err, FT_ERR_NULL, arg, name, -1, NAN, NAN, NAN, 0);
}
