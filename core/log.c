/* SPDX-License-Identifier: MIT */
/*
 * The logger of log.h. Lines are formatted into a stack buffer and written with one
 * write(2), so lines from the IMAP worker threads never interleave. Arguments are
 * escaped as they are formatted (format_kv), so a value from the network, such as an
 * Origin header holding `"x\" admin=1`, stays one value in both the text and JSON form.
 */
#include "core/log.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
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

/* ---- Formatting: arguments are data, the format is trusted ---- */

/*
 * The key=value text of a line is built from the format by hand, one conversion at a time,
 * so that what an argument holds can never pose as structure: a string argument inside a
 * quoted value (`reason="%s"`) has `"`, `\`, control bytes and invalid UTF-8 escaped; one
 * in a bare value (`origin=%s`) that holds a space, `=`, `"`, `\`, a control byte or
 * invalid UTF-8 turns the value into a quoted one (`origin="x\" admin=1"`). The escapes are
 * JSON's (\" \\ \n \r \t \u00XX, \ufffd for a byte that is not UTF-8), so the JSON format
 * copies quoted values as they are.
 */
typedef struct kvw {
    char *out;
    size_t cap, len;
    bool quoted;      /* inside a quoted value */
    bool auto_quote;  /* ... that we opened (closes at the token's end) */
    size_t tok_start; /* where the current token's value starts */
} kvw_t;

#define KV_RESERVE 2 /* room kept for a closing quote and the NUL */

static void kv_put(kvw_t *w, const char *s, size_t n)
{
    if (w->len + n + KV_RESERVE > w->cap)
        n = w->len + KV_RESERVE < w->cap ? w->cap - KV_RESERVE - w->len : 0;
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (need == 0 || need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate, or past U+10FFFF */
    return need;
}

/* Appends s escaped for the inside of a quoted value. */
static void kv_put_escaped(kvw_t *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            kv_put(w, e, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            e[0] = '\\';
            e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            kv_put(w, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(e, sizeof(e), "\\u%04x", c);
            kv_put(w, e, 6);
        } else if (c >= 0x80) {
            size_t u = utf8_len((const unsigned char *)s + i, n - i);
            if (u == 0) {
                kv_put(w, "\\ufffd", 6);
                i++;
            } else {
                kv_put(w, s + i, u);
                i += u;
            }
            continue;
        } else {
            kv_put(w, s + i, 1);
        }
        i++;
    }
}

static bool needs_quotes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f)
            return true;
        if (c >= 0x80) {
            size_t u = utf8_len((const unsigned char *)s + i, n - i);
            if (u == 0)
                return true;
            i += u - 1;
        }
    }
    return false;
}

/* An argument's text: escaped inside quotes; a bare value that needs it becomes quoted. */
static void kv_put_value(kvw_t *w, const char *s, size_t n)
{
    if (!w->quoted && needs_quotes(s, n)) {
        size_t at = w->tok_start < w->len ? w->tok_start : w->len;
        if (w->len + 1 + KV_RESERVE > w->cap)
            return; /* the line is full: drop the value rather than leave it bare */
        memmove(w->out + at + 1, w->out + at, w->len - at);
        w->out[at] = '"';
        w->len++;
        w->quoted = w->auto_quote = true;
    }
    if (w->quoted)
        kv_put_escaped(w, s, n);
    else
        kv_put(w, s, n);
}

/* A literal character of the format. */
static void kv_put_literal(kvw_t *w, char c)
{
    if (w->auto_quote && c == ' ') {
        kv_put(w, "\"", 1);
        w->quoted = w->auto_quote = false;
    } else if (c == '"' && !w->auto_quote) {
        w->quoted = !w->quoted;
    }
    kv_put(w, &c, 1);
    if (!w->quoted && (c == ' ' || c == '='))
        w->tok_start = w->len;
}

/* Formats one numeric conversion spec (already resolved: no '*') with its argument. The
 * spec is one conversion of the caller's format, which the compiler checked against the
 * arguments at the SB_LOG_* call (sb_log_write's format attribute). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int format_number(char *buf, size_t cap, const char *spec, char conv, const char *lenmod,
                         va_list *ap)
{
    bool sgn = conv == 'd' || conv == 'i';
    if (strchr("fFeEgGaA", conv))
        return strcmp(lenmod, "L") == 0 ? snprintf(buf, cap, spec, va_arg(*ap, long double))
                                        : snprintf(buf, cap, spec, va_arg(*ap, double));
    if (conv == 'p')
        return snprintf(buf, cap, spec, va_arg(*ap, void *));
    if (!strcmp(lenmod, "ll"))
        return sgn ? snprintf(buf, cap, spec, va_arg(*ap, long long))
                   : snprintf(buf, cap, spec, va_arg(*ap, unsigned long long));
    if (!strcmp(lenmod, "l"))
        return sgn ? snprintf(buf, cap, spec, va_arg(*ap, long))
                   : snprintf(buf, cap, spec, va_arg(*ap, unsigned long));
    if (!strcmp(lenmod, "z"))
        return sgn ? snprintf(buf, cap, spec, va_arg(*ap, ssize_t))
                   : snprintf(buf, cap, spec, va_arg(*ap, size_t));
    if (!strcmp(lenmod, "j"))
        return sgn ? snprintf(buf, cap, spec, va_arg(*ap, intmax_t))
                   : snprintf(buf, cap, spec, va_arg(*ap, uintmax_t));
    if (!strcmp(lenmod, "t"))
        return snprintf(buf, cap, spec, va_arg(*ap, ptrdiff_t));
    return sgn ? snprintf(buf, cap, spec, va_arg(*ap, int))
               : snprintf(buf, cap, spec, va_arg(*ap, unsigned));
}
#pragma GCC diagnostic pop

/* Builds the key=value text of fmt and its arguments into out (see kvw_t). */
static void format_kv(char *out, size_t cap, const char *fmt, va_list *ap)
{
    kvw_t w = {.out = out, .cap = cap};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            kv_put_literal(&w, *f);
            continue;
        }
        char spec[48] = "%", lenmod[3] = "";
        size_t sl = 1;
        int prec = -1;
        f++;
        while (*f && strchr("-+ #0", *f) && sl < 8)
            spec[sl++] = *f++;
        if (*f == '*') {
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", va_arg(*ap, int));
            f++;
        }
        while (*f >= '0' && *f <= '9' && sl < 20)
            spec[sl++] = *f++;
        if (*f == '.') {
            f++;
            if (*f == '*') {
                prec = va_arg(*ap, int);
                f++;
            } else {
                prec = 0;
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (*f++ - '0');
            }
            if (prec >= 0)
                sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, ".%d", prec);
        }
        for (size_t ll = 0; *f && strchr("hlLzjt", *f) && ll < 2; ll++)
            lenmod[ll] = *f++;
        if (!*f)
            break;
        char conv = *f;
        if (conv == '%') {
            kv_put_literal(&w, '%');
        } else if (conv == 's') {
            const char *a = va_arg(*ap, const char *);
            if (!a)
                a = "(null)";
            kv_put_value(&w, a, prec >= 0 ? strnlen(a, (size_t)prec) : strlen(a));
        } else if (conv == 'c') {
            char c = (char)va_arg(*ap, int);
            kv_put_value(&w, &c, 1);
        } else if (strchr("diouxXfFeEgGaAp", conv)) {
            char num[128];
            spec[sl++] = conv;
            spec[sl] = '\0';
            int n = format_number(num, sizeof(num), spec, conv, lenmod, ap);
            if (n > 0)
                kv_put_value(&w, num, (size_t)n < sizeof(num) ? (size_t)n : sizeof(num) - 1);
        } else {
            break; /* %n or unknown: stop, the arguments can no longer be followed */
        }
    }
    if (w.quoted)
        w.out[w.len++] = '"';
    w.out[w.len] = '\0';
}

/* ---- The JSON form ---- */

/* Appends s to the JSON line as a string body (without quotes), escaping as needed. */
static size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
    kvw_t w = {.out = out, .cap = cap, .quoted = true};
    kv_put_escaped(&w, s, n);
    return w.len;
}

/* The body of a quoted value (escapes are already JSON's): copied up to its closing quote. */
static size_t json_copy_quoted(char *out, size_t cap, const char **pp)
{
    const char *p = *pp;
    size_t o = 0;
    while (*p && *p != '"' && o + 8 < cap) {
        if (*p == '\\' && p[1] && strchr("\"\\/bfnrtu", p[1])) {
            out[o++] = *p++;
            out[o++] = *p++;
        } else if (*p == '\\' || (unsigned char)*p < 0x20) {
            o += json_escape(out + o, cap - o, p++, 1);
        } else {
            out[o++] = *p++;
        }
    }
    *pp = *p == '"' ? p + 1 : p;
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
        if (*p == '"' || !eq || (sp && sp < eq)) { /* a bare word: keep it as "word" */
            o += (size_t)snprintf(out + o, cap - o, ",\"word\":\"");
            if (*p == '"') {
                p++;
                o += json_copy_quoted(out + o, cap - o, &p);
            } else {
                size_t n = sp ? (size_t)(sp - p) : strlen(p);
                o += json_escape(out + o, cap - o, p, n);
                p += n;
            }
            o += (size_t)snprintf(out + o, cap - o, "\"");
            continue;
        }
        out[o++] = ',';
        out[o++] = '"';
        o += json_escape(out + o, cap - o, p, (size_t)(eq - p));
        o += (size_t)snprintf(out + o, cap - o, "\":\"");
        const char *v = eq + 1;
        if (*v == '"') {
            v++;
            o += json_copy_quoted(out + o, cap - o, &v);
            p = v;
        } else {
            const char *end = strchr(v, ' ');
            size_t n = end ? (size_t)(end - v) : strlen(v);
            o += json_escape(out + o, cap - o, v, n);
            p = v + n;
        }
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
    format_kv(kv, sizeof(kv), fmt, &ap);
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
