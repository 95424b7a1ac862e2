/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr, as text
 *   `2026-11-23T07:40:01.123Z warn  redis.reconnect addr=unix:/x err=TIMEDOUT`
 * or, with log_format json, as one JSON object per line whose fields are the
 * key=value pairs. The SB_LOG_* macros do not evaluate their arguments below the
 * current level. Message bodies and secrets are never logged above DEBUG.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

typedef enum {
    SB_LOG_ERROR = 0,
    SB_LOG_WARN = 1,
    SB_LOG_INFO = 2,
    SB_LOG_DEBUG = 3,
} sb_log_level_t;

typedef enum { SB_LOG_TEXT = 0, SB_LOG_JSON = 1 } sb_log_format_t;

/** The current level (default SB_LOG_INFO); read by the macros. */
extern int sb_log_level;

/** Sets the level and format. */
void sb_log_setup(sb_log_level_t level, sb_log_format_t format);

/** Parses "error|warn|info|debug"; returns 0 or SB_EINVAL. */
int sb_log_level_parse(const char *s, sb_log_level_t *out);

/**
 * Writes one line: `event` is a dotted name ("http.request"), `fmt` formats the
 * key=value pairs. The format is trusted, the arguments are not: a string argument is
 * escaped (`"` `\` control bytes, invalid UTF-8) inside a quoted value (key="%s"), and a
 * bare value (key=%s) that holds a space, `=`, a quote, a backslash, a control byte or
 * invalid UTF-8 is quoted and escaped, so an argument can never add a key or end a line.
 */
void sb_log_write(sb_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SB_LOG_AT(lvl, event, ...)                                                                 \
    do {                                                                                           \
        if ((int)(lvl) <= sb_log_level)                                                            \
            sb_log_write((lvl), (event), __VA_ARGS__);                                             \
    } while (0)
#define SB_LOG_ERROR(event, ...) SB_LOG_AT(SB_LOG_ERROR, event, __VA_ARGS__)
#define SB_LOG_WARN(event, ...)  SB_LOG_AT(SB_LOG_WARN, event, __VA_ARGS__)
#define SB_LOG_INFO(event, ...)  SB_LOG_AT(SB_LOG_INFO, event, __VA_ARGS__)
#define SB_LOG_DEBUG(event, ...) SB_LOG_AT(SB_LOG_DEBUG, event, __VA_ARGS__)

#endif
