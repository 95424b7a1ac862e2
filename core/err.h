/* SPDX-License-Identifier: MIT */
/*
 * Error codes of Switchboard. Every function that can fail returns 0 or a negative
 * SB_E* code; this one X-macro table gives the codes, their names (sb_err_name) and
 * their human text (sb_strerror). The codes also map to the HTTP API's error codes.
 */
#ifndef SB_ERR_H
#define SB_ERR_H

/* X(name, value, text) */
#define SB_ERRORS(X)                                                                               \
    X(OK, 0, "success")                                                                            \
    X(INVAL, -1, "invalid argument")                                                               \
    X(NOMEM, -2, "out of memory")                                                                  \
    X(TOOBIG, -3, "too large")                                                                     \
    X(PARSE, -4, "malformed input")                                                                \
    X(UTF8, -5, "invalid UTF-8")                                                                   \
    X(DEPTH, -6, "nested too deeply")                                                              \
    X(NOTFOUND, -7, "not found")                                                                   \
    X(CONFLICT, -8, "conflict")                                                                    \
    X(AUTH, -9, "unauthorized")                                                                    \
    X(FORBIDDEN, -10, "forbidden")                                                                 \
    X(TIMEDOUT, -11, "timed out")                                                                  \
    X(DISCONNECTED, -12, "not connected")                                                          \
    X(REDIS, -13, "redis error")                                                                   \
    X(IO, -14, "i/o error")                                                                        \
    X(CONFIG, -15, "configuration error")                                                          \
    X(CANCELED, -16, "canceled")                                                                   \
    X(RATELIMIT, -17, "rate limited")                                                              \
    X(UNAVAILABLE, -18, "temporarily unavailable")                                                 \
    X(EXISTS, -19, "already exists")                                                               \
    X(INTERNAL, -20, "internal error")

enum {
#define SB_ERR_ENUM(name, value, text) SB_E##name = value,
    SB_ERRORS(SB_ERR_ENUM)
#undef SB_ERR_ENUM
};

/** Returns a static human-readable text for an SB_E* code ("unknown error" otherwise). */
const char *sb_strerror(int err);

/** Returns the static symbolic name of an SB_E* code without prefix, e.g. "TOOBIG". */
const char *sb_err_name(int err);

#endif
