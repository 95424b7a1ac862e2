/* SPDX-License-Identifier: MIT */
/*
 * The logger of log.h. Lines are formatted into a stack buffer and written with one
 * write(2), so lines from the IMAP worker threads never interleave.
 */
#include "core/log.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int sb_log_level = SB_LOG_INFO;
static sb_log_format_t log_format = SB_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sb_log_setup(sb_log_level_t level, sb_log_format_t format)
{
    sb_log_level = (int)level;
    log_format = format;
}

int sb_log_level_parse(const char *s, sb_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (sb_log_level_t)i;
            return 0;
        }
    }
    return SB_EINVAL;
}

/* Appends s to the JSON line as a string body (without quotes), escaping as needed. */
static size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* Converts `k=v k2="v 2"` pairs to `,"k":"v","k2":"v 2"`. */
static size_t kv_to_json(char *out, size_t cap, const char *kv)
{
    size_t o = 0;
    const char *p = kv;
    while (*p && o + 16 < cap) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        const char *sp = strchr(p, ' ');
        if (!*p)
            break;
        if (!eq || (sp && sp < eq)) { /* a bare word: keep it as "msg" */
            size_t n = sp ? (size_t)(sp - p) : strlen(p);
            o += (size_t)snprintf(out + o, cap - o, ",\"word\":\"");
            o += json_escape(out + o, cap - o, p, n);
            o += (size_t)snprintf(out + o, cap - o, "\"");
            p += n;
            continue;
        }
        out[o++] = ',';
        out[o++] = '"';
        o += json_escape(out + o, cap - o, p, (size_t)(eq - p));
        o += (size_t)snprintf(out + o, cap - o, "\":\"");
        const char *v = eq + 1;
        size_t n;
        if (*v == '"') {
            v++;
            const char *end = strchr(v, '"');
            n = end ? (size_t)(end - v) : strlen(v);
            p = end ? end + 1 : v + n;
        } else {
            const char *end = strchr(v, ' ');
            n = end ? (size_t)(end - v) : strlen(v);
            p = v + n;
        }
        o += json_escape(out + o, cap - o, v, n);
        if (o + 2 < cap)
            out[o++] = '"';
    }
    return o;
}

void sb_log_write(sb_log_level_t level, const char *event, const char *fmt, ...)
{
    char kv[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kv, sizeof(kv), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tn = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tn, sizeof(ts) - tn, ".%03dZ", (int)(tv.tv_usec / 1000));

    char line[4096];
    size_t n;
    const char *lvl = level_names[level < 0 || level > 3 ? 0 : level];
    if (log_format == SB_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts,
                             lvl);
        n += json_escape(line + n, sizeof(line) - n, event, strlen(event));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
        n += kv_to_json(line + n, sizeof(line) - n, kv);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %-5s %s %s\n", ts, lvl, event, kv);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
