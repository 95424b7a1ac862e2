/* SPDX-License-Identifier: MIT */
/* Text and names for the SB_E* codes of err.h, generated from the same X-macro table. */
#include "core/err.h"

const char *sb_strerror(int err)
{
    switch (err) {
#define SB_ERR_TEXT(name, value, text)                                                             \
    case value:                                                                                    \
        return text;
        SB_ERRORS(SB_ERR_TEXT)
#undef SB_ERR_TEXT
    }
    return "unknown error";
}

const char *sb_err_name(int err)
{
    switch (err) {
#define SB_ERR_NAME(name, value, text)                                                             \
    case value:                                                                                    \
        return #name;
        SB_ERRORS(SB_ERR_NAME)
#undef SB_ERR_NAME
    }
    return "UNKNOWN";
}
