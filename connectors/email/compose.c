/* SPDX-License-Identifier: MIT */
/*
 * Outbound mail (compose.h): RFC 5322 headers with folding, RFC 2047 encoded-words
 * ("B" encoding, UTF-8, never splitting a character, at most 75 characters each and 76 per
 * line), RFC 3834 Auto-Submitted, and a MIME multipart/alternative body (RFC 2045, 2046)
 * whose text/plain and text/html parts are quoted-printable with lines of at most 76.
 *
 * The boundary starts with "=_": quoted-printable writes every "=" as "=3D", so no line
 * of either part can ever look like it. The HTML part is the text, escaped, in paragraphs,
 * with http(s) links made clickable; it loads nothing from anywhere.
 */
#include "connectors/email/compose.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connectors/email/internal.h"
#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/msg.h"
#include "core/util.h"

/* RFC 2047 §2: a line holding encoded-words is at most 76 characters; we keep every
 * header line to that (RFC 5322 §2.1.1 asks for 78). */
#define LINE_MAX_EW 76

/* ---- Checks ---- */

static bool ascii_only(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* A one-line header value: UTF-8, no control character (sb_line_check). NULL is fine. */
static bool line_ok(const char *s, size_t max)
{
    return !s || sb_line_check(s, max) == 0;
}

/* A msg-id's inside (RFC 5322 §3.6.4), as clients really write them: printable ASCII, no
 * space, no angle bracket. */
static bool id_shaped(const char *s)
{
    if (!s || !*s || strlen(s) > SB_EMAIL_MSGID_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
            return false;
    return true;
}

/* Our own tokens (message ids, domains): letters, digits and "._-". */
static bool token_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return false;
    return true;
}

int sb_email_message_id(const char *msg_id, const char *domain, char *out, size_t cap)
{
    if (!token_ok(msg_id) || !token_ok(domain))
        return SB_EINVAL;
    int n = snprintf(out, cap, "sb.%s@%s", msg_id, domain);
    return n > 0 && (size_t)n < cap && n <= SB_EMAIL_MSGID_MAX ? 0 : SB_EINVAL;
}

/* ---- Subject ---- */

/* "re", "aw" or "sv" + an optional "[n]" or "(n)" + ":" at s: the length, or 0. */
static size_t reply_prefix(const char *s)
{
    static const char *const words[] = {"re", "aw", "sv"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strncasecmp(s, words[i], 2) != 0)
            continue;
        size_t n = 2;
        if (s[n] == '[' || s[n] == '(') {
            char close = s[n] == '[' ? ']' : ')';
            size_t d = n + 1;
            while (isdigit((unsigned char)s[d]))
                d++;
            if (d == n + 1 || s[d] != close)
                continue;
            n = d + 1;
        }
        if (s[n] == ':')
            return n + 1;
    }
    return 0;
}

const char *sb_email_subject_base(const char *subject)
{
    const char *s = subject ? subject : "";
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = reply_prefix(s);
        if (n == 0)
            return s;
        s += n;
    }
}

/* ---- Header writing with folding ---- */

typedef struct hdr {
    sb_buf_t *b;
    size_t col;
    bool first; /* nothing written after "Name: " yet */
} hdr_t;

static void hdr_start(hdr_t *h, sb_buf_t *b, const char *name)
{
    h->b = b;
    h->first = true;
    sb_buf_printf(b, "%s: ", name);
    h->col = strlen(name) + 2;
}

static void hdr_fold(hdr_t *h)
{
    sb_buf_puts(h->b, "\r\n ");
    h->col = 1;
}

/* One token that is never split, after a space (or folded onto a new line when it would
 * pass limit characters and is not the first). */
static void hdr_word(hdr_t *h, const char *w, size_t n, size_t limit)
{
    if (!h->first) {
        if (h->col + 1 + n > limit)
            hdr_fold(h);
        else
            sb_buf_append(h->b, " ", 1), h->col++;
    }
    sb_buf_append(h->b, w, n);
    h->col += n;
    h->first = false;
}

static void hdr_end(hdr_t *h)
{
    sb_buf_puts(h->b, "\r\n");
}

static void b64(const unsigned char *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* s as RFC 2047 "B" encoded-words, each holding whole UTF-8 characters and sized to the
 * room left on its line. */
static void hdr_encoded(hdr_t *h, const char *s)
{
    static const size_t overhead = 12; /* "=?UTF-8?B?" "?=" */
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t used = h->first ? h->col : h->col + 1;
        size_t room = used + overhead < LINE_MAX_EW ? (LINE_MAX_EW - used - overhead) / 4 * 3 : 0;
        if (room < 4 && !h->first) { /* not even one character: next line */
            hdr_fold(h);
            h->first = true;
            continue;
        }
        size_t take = sb__email_utf8_cut(s + i, n - i, room < 4 ? 4 : room);
        if (take == 0)
            take = 1; /* cannot happen on valid UTF-8; never loop */
        char word[128];
        memcpy(word, "=?UTF-8?B?", 10);
        b64((const unsigned char *)s + i, take, word + 10);
        strcat(word, "?=");
        hdr_word(h, word, strlen(word), LINE_MAX_EW);
        i += take;
    }
}

/* Unstructured text (a subject): as it is, folded at spaces, when it is ASCII and holds
 * nothing that reads as an encoded-word; else encoded. */
static void hdr_text(hdr_t *h, const char *s)
{
    if (!ascii_only(s) || strstr(s, "=?")) {
        hdr_encoded(h, s);
        return;
    }
    /* Words end before a space that follows a non-space: extra spaces stay in the next
     * word, so unfolding (which removes only the CRLF) gives the text back exactly. */
    while (*s) {
        const char *e = s;
        while (*e == ' ')
            e++;
        while (*e && *e != ' ')
            e++;
        hdr_word(h, s, (size_t)(e - s), LINE_MAX_EW);
        s = *e ? e + 1 : e;
    }
}

/* A mailbox: "Name" <addr>, the name quoted (ASCII) or encoded (otherwise). */
static void hdr_mailbox(hdr_t *h, const char *name, const char *addr)
{
    if (name && *name) {
        if (ascii_only(name) && !strstr(name, "=?")) {
            sb_buf_t q;
            sb_buf_init(&q, 2 * SB_MAX_NAME + 3);
            sb_buf_append(&q, "\"", 1);
            for (const char *p = name; *p; p++) {
                if (*p == '"' || *p == '\\')
                    sb_buf_append(&q, "\\", 1);
                sb_buf_append(&q, p, 1);
            }
            sb_buf_append(&q, "\"", 1);
            if (sb_buf_error(&q) == 0)
                hdr_word(h, q.data, q.len, LINE_MAX_EW);
            sb_buf_dispose(&q);
        } else {
            hdr_encoded(h, name);
        }
    }
    char a[SB_MAX_EMAIL + 3];
    int n = snprintf(a, sizeof(a), "<%s>", addr);
    hdr_word(h, a, (size_t)n, LINE_MAX_EW);
}

static void put_mailbox(sb_buf_t *b, const char *header, const char *name, const char *addr)
{
    hdr_t h;
    hdr_start(&h, b, header);
    hdr_mailbox(&h, name, addr);
    hdr_end(&h);
}

static void put_date(sb_buf_t *b, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    sb_buf_printf(b, "Date: %s, %d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* In-Reply-To and References: the customer's chain and the message answered, id-shaped
 * ones only (others cannot thread anything), the first and the last SB_EMAIL_REFS_MAX - 1. */
static void put_thread(sb_buf_t *b, const sb_email_compose_t *c)
{
    const char *chain[SB_EMAIL_REFS_MAX];
    size_t n = 0;
    const char *irt = id_shaped(c->in_reply_to) ? c->in_reply_to : NULL;
    size_t total = c->n_references + (irt ? 1 : 0);
    for (size_t i = 0; i < total; i++) {
        const char *id = i < c->n_references ? c->references[i] : irt;
        if (!id_shaped(id) || (i == c->n_references && n > 0 && strcmp(chain[n - 1], id) == 0))
            continue;
        if (n < SB_EMAIL_REFS_MAX) {
            chain[n++] = id;
        } else { /* keep the first; slide the rest */
            memmove(chain + 1, chain + 2, (SB_EMAIL_REFS_MAX - 2) * sizeof(chain[0]));
            chain[SB_EMAIL_REFS_MAX - 1] = id;
        }
    }
    if (irt)
        sb_buf_printf(b, "In-Reply-To: <%s>\r\n", irt);
    if (n == 0)
        return;
    hdr_t h;
    hdr_start(&h, b, "References");
    for (size_t i = 0; i < n; i++) {
        char w[SB_EMAIL_MSGID_MAX + 3];
        int k = snprintf(w, sizeof(w), "<%s>", chain[i]);
        hdr_word(&h, w, (size_t)k, LINE_MAX_EW);
    }
    hdr_end(&h);
}

/* ---- Body ---- */

/* s[0..n) quoted-printable (RFC 2045 §6.7): LF or CRLF become CRLF, lines ≤ 76 with soft
 * breaks, "=", 8-bit, controls and blanks before a line end as =XX; "From " at a line's
 * start too, so no mbox on the way mangles it. Ends with CRLF. */
static void put_qp(sb_buf_t *b, const char *s, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
            continue;
        if (c == '\n') {
            sb_buf_append(b, "\r\n", 2);
            col = 0;
            continue;
        }
        bool at_end =
            i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        bool lit = (c > 0x20 && c < 0x7f && c != '=') || ((c == ' ' || c == '\t') && !at_end);
        if (col == 0 && c == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)
            lit = false;
        char tok[4];
        size_t len = lit ? 1 : 3;
        if (lit)
            tok[0] = (char)c;
        else
            snprintf(tok, sizeof(tok), "=%02X", c);
        if (col + len > LINE_MAX_EW - 1) {
            sb_buf_append(b, "=\r\n", 3);
            col = 0;
        }
        sb_buf_append(b, tok, len);
        col += len;
    }
    if (n == 0 || s[n - 1] != '\n')
        sb_buf_append(b, "\r\n", 2);
}

static void html_escape(sb_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            sb_buf_puts(b, "&amp;");
            break;
        case '<':
            sb_buf_puts(b, "&lt;");
            break;
        case '>':
            sb_buf_puts(b, "&gt;");
            break;
        case '"':
            sb_buf_puts(b, "&quot;");
            break;
        case '\'':
            sb_buf_puts(b, "&#39;");
            break;
        case '\r':
            break;
        default:
            sb_buf_append(b, s + i, 1);
        }
    }
}

/* The length of the link starting at s (http:// or https://), or 0: up to a blank, a
 * quote or an angle bracket, without trailing punctuation or an unmatched ')'. */
static size_t link_at(const char *s, size_t n)
{
    size_t start;
    if (n > 7 && strncasecmp(s, "http://", 7) == 0)
        start = 7;
    else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
        start = 8;
    else
        return 0;
    size_t e = start;
    while (e < n && (unsigned char)s[e] > 0x20 && !strchr("<>\"'`", s[e]) && s[e] != 0x7f)
        e++;
    for (;;) {
        if (e > start && strchr(".,;:!?", s[e - 1])) {
            e--;
        } else if (e > start && s[e - 1] == ')' && !memchr(s, '(', e)) {
            e--;
        } else {
            break;
        }
    }
    return e > start ? e : 0;
}

/* One line of text as HTML: escaped, links clickable. */
static void html_line(sb_buf_t *b, const char *s, size_t n)
{
    size_t plain = 0;
    for (size_t i = 0; i < n;) {
        bool boundary = i == 0 || !isalnum((unsigned char)s[i - 1]);
        size_t k = boundary ? link_at(s + i, n - i) : 0;
        if (k == 0) {
            i++;
            continue;
        }
        html_escape(b, s + plain, i - plain);
        sb_buf_puts(b, "<a href=\"");
        html_escape(b, s + i, k);
        sb_buf_puts(b, "\">");
        html_escape(b, s + i, k);
        sb_buf_puts(b, "</a>");
        i += k;
        plain = i;
    }
    html_escape(b, s + plain, n - plain);
}

static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* The text as a small HTML document: paragraphs at blank lines, <br> at line ends. */
static void put_html(sb_buf_t *b, const char *text)
{
    sb_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
    bool in_p = false;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (blank_line(p, n)) {
            if (in_p)
                sb_buf_puts(b, "</p>\n");
            in_p = false;
        } else {
            sb_buf_puts(b, in_p ? "<br>\n" : "<p>");
            in_p = true;
            html_line(b, p, n);
        }
        p += n + (eol ? 1 : 0);
    }
    if (in_p)
        sb_buf_puts(b, "</p>\n");
    sb_buf_puts(b, "</body></html>\n");
}

static void put_part(sb_buf_t *b, const char *boundary, const char *type, const char *s, size_t n)
{
    sb_buf_printf(b,
                  "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                  boundary, type);
    put_qp(b, s, n);
}

/* ---- The message ---- */

static int check(const sb_email_compose_t *c, const char **domain)
{
    if (!c->from_addr || !c->to_addr || !c->msg_id || !c->text)
        return SB_EINVAL;
    if (sb_email_check(c->from_addr) != 0 || sb_email_check(c->to_addr) != 0 ||
        (c->reply_to && sb_email_check(c->reply_to) != 0))
        return SB_EINVAL;
    if (!line_ok(c->from_name, SB_MAX_NAME) || !line_ok(c->to_name, SB_MAX_NAME) ||
        !line_ok(c->subject, SB_MAX_SUBJECT) || !line_ok(c->in_reply_to, SB_MIME_MAX_MSGID) ||
        !line_ok(c->conversation, 64) || (c->conversation && !token_ok(c->conversation)))
        return SB_EINVAL;
    for (size_t i = 0; i < c->n_references; i++)
        if (!c->references[i] || !line_ok(c->references[i], SB_MIME_MAX_MSGID))
            return SB_EINVAL;
    if (!sb_utf8_valid(c->text, strlen(c->text)))
        return SB_EINVAL;
    *domain = c->domain ? c->domain : strrchr(c->from_addr, '@') + 1;
    return 0;
}

int sb_email_compose(const sb_email_compose_t *c, char **out, size_t *out_len)
{
    *out = NULL;
    const char *domain;
    int rc = check(c, &domain);
    char mid[SB_EMAIL_MSGID_MAX + 1];
    if (rc != 0 || (rc = sb_email_message_id(c->msg_id, domain, mid, sizeof(mid))) != 0)
        return rc;
    char hash[65], boundary[40];
    sb_sha256_hex(mid, strlen(mid), hash);
    snprintf(boundary, sizeof(boundary), "=_sb_%.24s", hash);

    sb_buf_t b;
    sb_buf_init(&b, SB_EMAIL_COMPOSE_MAX);
    put_date(&b, c->date_ms);
    put_mailbox(&b, "From", c->from_name, c->from_addr);
    put_mailbox(&b, "To", c->to_name, c->to_addr);
    if (c->reply_to)
        sb_buf_printf(&b, "Reply-To: <%s>\r\n", c->reply_to);
    const char *subject = c->subject ? c->subject : "";
    char *re = NULL;
    if (c->reply) {
        size_t n = strlen(sb_email_subject_base(subject));
        re = sb_malloc(n + 5);
        snprintf(re, n + 5, "Re: %s", sb_email_subject_base(subject));
        subject = re;
    }
    hdr_t h;
    hdr_start(&h, &b, "Subject");
    hdr_text(&h, subject);
    hdr_end(&h);
    sb_free(re);
    sb_buf_printf(&b, "Message-ID: <%s>\r\n", mid);
    put_thread(&b, c);
    sb_buf_puts(&b, "MIME-Version: 1.0\r\n");
    if (c->automatic != SB_EMAIL_HUMAN) /* RFC 3834 §5; Exchange's own flag as well */
        sb_buf_printf(&b, "Auto-Submitted: %s\r\nX-Auto-Response-Suppress: All\r\n",
                      c->automatic == SB_EMAIL_AUTO_REPLIED ? "auto-replied" : "auto-generated");
    if (c->conversation)
        sb_buf_printf(&b, "X-Switchboard-Conversation: %s\r\n", c->conversation);
    sb_buf_printf(&b, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", boundary);

    put_part(&b, boundary, "text/plain", c->text, strlen(c->text));
    sb_buf_t html;
    sb_buf_init(&html, SB_EMAIL_COMPOSE_MAX);
    put_html(&html, c->text);
    rc = sb_buf_error(&html);
    if (rc == 0)
        put_part(&b, boundary, "text/html", html.data, html.len);
    sb_buf_dispose(&html);
    sb_buf_printf(&b, "--%s--\r\n", boundary);
    if (rc == 0)
        rc = sb_buf_error(&b);
    if (rc != 0) {
        sb_buf_dispose(&b);
        return rc;
    }
    *out = sb_buf_steal(&b, out_len);
    return 0;
}
