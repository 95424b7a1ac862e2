/* SPDX-License-Identifier: MIT */
/*
 * RFC 2047 encoded words in header values ("=?UTF-8?B?Q2Fmw6k=?="), decoded by hand rather
 * than with libetpan's mailmime_encoded_phrase_parse, which converts each word on its own:
 * mailers that split a long subject into words cut multi-byte characters in two (a CJK
 * subject loses a character at every join), and RFC 2047 §6.3 lets a decoder join them.
 * Here adjacent words of one charset are joined as bytes first and converted once, the
 * white space between encoded words is dropped (§6.2), and text outside words is UTF-8
 * when it is, else Windows-1252 (raw 8-bit headers from old clients). The charset of a
 * word goes through sb__email_to_utf8, so its labels are read as the bodies' are.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/internal.h"
#include "core/alloc.h"
#include "core/buf.h"

static int b64val(unsigned char c)
{
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'             ? 62
           : c == '/'             ? 63
                                  : -1;
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Appends the decoded text of one word (B: base64, skipping what is not of its alphabet;
 * Q: '_' is a space, =XX a byte). */
static void decode_text(sb_buf_t *b, char enc, const char *t, size_t n)
{
    if (enc == 'b') {
        unsigned acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
            int v = b64val((unsigned char)t[i]);
            if (v < 0)
                continue;
            acc = (acc << 6) | (unsigned)v, bits += 6;
            if (bits >= 8) {
                char c = (char)((acc >> (bits - 8)) & 0xff);
                sb_buf_append(b, &c, 1);
                bits -= 8;
            }
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int h = t[i] == '=' && i + 2 < n ? hexval((unsigned char)t[i + 1]) : -1;
        int l = h >= 0 ? hexval((unsigned char)t[i + 2]) : -1;
        char c = t[i] == '_' ? ' ' : t[i];
        if (h >= 0 && l >= 0)
            c = (char)(h * 16 + l), i += 2;
        sb_buf_append(b, &c, 1);
    }
}

typedef struct word {
    char charset[64];
    char enc;           /* 'b' or 'q' */
    const char *text;   /* the encoded text */
    size_t text_n, len; /* len: the whole word, "=?" to "?=" */
} word_t;

/* Parses an encoded word at s[0..n) (s starts with "=?"); false when it is none. */
static bool word_at(const char *s, size_t n, word_t *w)
{
    if (n < 8 || s[0] != '=' || s[1] != '?')
        return false;
    size_t i = 2, cs = 0;
    while (i < n && s[i] != '?' && s[i] > ' ' && cs + 1 < sizeof(w->charset))
        w->charset[cs++] = s[i++];
    w->charset[cs] = '\0';
    char *star = strchr(w->charset, '*'); /* RFC 2231 language: "UTF-8*en" */
    if (star)
        *star = '\0';
    if (cs == 0 || i + 3 > n || s[i] != '?' || s[i + 2] != '?')
        return false;
    w->enc = (char)(s[i + 1] | 0x20);
    if (w->enc != 'b' && w->enc != 'q')
        return false;
    w->text = s + i + 3;
    for (size_t j = i + 3; j + 1 < n; j++) {
        if (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n')
            return false;
        if (s[j] == '?' && s[j + 1] == '=') {
            w->text_n = j - (i + 3);
            w->len = j + 2;
            return true;
        }
    }
    return false;
}

typedef struct run {
    sb_buf_t bytes;   /* the run's bytes, not yet converted */
    char charset[64]; /* "" for text outside words */
} run_t;

/* Converts the run's bytes and appends them to out; the run is then empty. */
static void flush(run_t *r, sb_buf_t *out, size_t cap)
{
    if (r->bytes.len) {
        char *u = sb__email_to_utf8(r->charset[0] ? r->charset : NULL, r->bytes.data, r->bytes.len);
        sb_buf_append(out, u, strlen(u));
        sb_free(u);
    }
    sb_buf_dispose(&r->bytes);
    sb_buf_init(&r->bytes, cap);
}

/* Starts a run of charset (a word's, or "" for plain text) unless it is the current one. */
static void switch_run(run_t *r, sb_buf_t *out, const char *charset, size_t cap)
{
    if (strcasecmp(r->charset, charset) == 0)
        return;
    flush(r, out, cap);
    snprintf(r->charset, sizeof(r->charset), "%s", charset);
}

char *sb__email_decode_words(const char *s, size_t n)
{
    sb_buf_t out;
    sb_buf_init(&out, 4 * n + 16);
    run_t r = {.charset = ""};
    sb_buf_init(&r.bytes, n + 1); /* decoding never makes more bytes */
    bool after_word = false;
    for (size_t i = 0; i < n;) {
        word_t w;
        if (s[i] == '=' && word_at(s + i, n - i, &w)) {
            switch_run(&r, &out, w.charset, n + 1);
            decode_text(&r.bytes, w.enc, w.text, w.text_n);
            i += w.len;
            after_word = true;
            continue;
        }
        size_t ws = i;
        while (ws < n && (s[ws] == ' ' || s[ws] == '\t' || s[ws] == '\r' || s[ws] == '\n'))
            ws++;
        if (after_word && ws > i && ws < n && s[ws] == '=' && word_at(s + ws, n - ws, &w)) {
            i = ws; /* white space between two encoded words is not text */
            continue;
        }
        switch_run(&r, &out, "", n + 1);
        sb_buf_append(&r.bytes, s + i, ws > i ? ws - i : 1);
        i = ws > i ? ws : i + 1;
        after_word = false;
    }
    flush(&r, &out, n + 1);
    sb_buf_dispose(&r.bytes);
    char *u = sb_buf_steal(&out, NULL);
    sb_buf_dispose(&out);
    return u ? u : sb_strdup("");
}
