/* fedhar_types.c - names of the library's status codes (fedhar_types.h). */
#include "fedhar_types.h"

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
