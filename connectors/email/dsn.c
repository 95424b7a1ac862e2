/* SPDX-License-Identifier: MIT */
/*
 * Automatic mail and bounces: the rule that says a message was sent by a machine, the
 * facts of a delivery status notification (RFC 3464 message/delivery-status: the failed
 * recipient, its Action, Status and Diagnostic-Code; RFC 3463 status codes), the Message-ID
 * of a bounce's returned headers (RFC 6522 text/rfc822-headers) and the dedup key of a
 * message without a Message-ID. mime.c calls the sb__email_dsn_* helpers while it walks
 * the parts; the public ones are declared in mime.h.
 *
 * The delivery-status body is read by hand: libetpan has no parser for it, and it is a
 * few header-like groups (one per message, then one per recipient) separated by blank
 * lines. The returned headers are searched by hand too (see sb__email_headers_msgid). Every value
 * is copied with a cap, so a hostile report cannot grow anything.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/internal.h"
#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/util.h"

bool sb_mime_is_automatic(const sb_mime_msg_t *m)
{
    return m && (m->flags &
                 (SB_MIME_AUTO_SUBMITTED | SB_MIME_PRECEDENCE | SB_MIME_AUTOREPLY | SB_MIME_LIST |
                  SB_MIME_DSN | SB_MIME_MAILER_DAEMON | SB_MIME_AUTO_RESPONSE_SUPPRESS)) != 0;
}

bool sb_mime_is_permanent_bounce(const sb_mime_msg_t *m)
{
    return m && m->bounce_action && m->bounce_status && strcmp(m->bounce_action, "failed") == 0 &&
           m->bounce_status[0] == '5';
}

void sb_mime_fallback_id(const char *raw, size_t n, char out[SB_MIME_FALLBACK_ID_LEN])
{
    sb_sha256_hex(raw ? raw : "", raw ? n : 0, out);
}

/* ---- message/delivery-status ---- */

#define FIELD_CAP 1024 /* one unfolded field value; longer ones are cut */

/* One recipient's group of fields, the values as they were (cut to FIELD_CAP). */
typedef struct rcpt {
    char final[FIELD_CAP], original[FIELD_CAP], action[FIELD_CAP], status[FIELD_CAP],
        diag[FIELD_CAP];
    bool any;
} rcpt_t;

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* "rfc822; <a@b.example>" → "a@b.example" (the type before ';' dropped, brackets too). */
static char *address_of(const char *v)
{
    const char *semi = strchr(v, ';');
    const char *a = skip_space(semi ? semi + 1 : v);
    if (*a == '<')
        a++;
    size_t len = strcspn(a, "> \t");
    return sb__email_header_value(a, len, SB_MAX_EMAIL);
}

/* The first "class.subject.detail" code in v (RFC 3463), "" when there is none. */
static char *status_of(const char *v)
{
    v = skip_space(v);
    size_t len = strspn(v, "0123456789.");
    int cls = 0, a = 0, b = 0, used = 0;
    if (len < 16 && sscanf(v, "%1d.%3d.%3d%n", &cls, &a, &b, &used) == 3 && (size_t)used == len &&
        cls >= 2 && cls <= 5) {
        char out[16];
        snprintf(out, sizeof(out), "%d.%d.%d", cls, a, b);
        return sb_strdup(out);
    }
    return sb_strdup("");
}

static char *action_of(const char *v)
{
    v = skip_space(v);
    char out[16];
    size_t k = 0;
    for (; k + 1 < sizeof(out) && isalpha((unsigned char)v[k]); k++)
        out[k] = (char)tolower((unsigned char)v[k]);
    out[k] = '\0';
    return sb_strdup(out);
}

/* "smtp; 550 5.1.1 <x>: Recipient address rejected" → the text after the type. */
static char *diagnostic_of(const char *v)
{
    const char *semi = strchr(v, ';');
    const char *t = skip_space(semi ? semi + 1 : v);
    return sb__email_header_value(t, strlen(t), SB_MIME_MAX_DIAGNOSTIC);
}

static void keep(char *dst, const char *v, size_t n)
{
    if (n >= FIELD_CAP)
        n = FIELD_CAP - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void field(rcpt_t *r, const char *name, size_t nl, const char *v, size_t vn)
{
    static const struct {
        const char *name;
        size_t off;
    } known[] = {
        {"final-recipient", offsetof(rcpt_t, final)},
        {"original-recipient", offsetof(rcpt_t, original)},
        {"action", offsetof(rcpt_t, action)},
        {"status", offsetof(rcpt_t, status)},
        {"diagnostic-code", offsetof(rcpt_t, diag)},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i].name) == nl && strncasecmp(name, known[i].name, nl) == 0) {
            keep((char *)r + known[i].off, v, vn);
            r->any = true;
        }
}

/* Is r a better report than best: the first failed recipient, else the first one. */
static bool better(const rcpt_t *r, const rcpt_t *best, bool have)
{
    if (!r->any || (!r->final[0] && !r->original[0] && !r->action[0]))
        return false;
    if (!have)
        return true;
    char *ra = action_of(r->action), *ba = action_of(best->action);
    bool b = strcmp(ra, "failed") == 0 && strcmp(ba, "failed") != 0;
    sb_free(ra), sb_free(ba);
    return b;
}

/*
 * Splits s[0..n) into groups of unfolded fields; the per-message group comes first and
 * holds no recipient, so it never wins.
 */
void sb__email_dsn_status(sb_mime_msg_t *m, const char *s, size_t n)
{
    rcpt_t *cur = sb_calloc(2, sizeof(rcpt_t)), *best = cur + 1;
    bool have = false;
    char name[64], value[FIELD_CAP];
    size_t nl = 0, vn = 0;
    for (size_t i = 0; i <= n;) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        size_t z = e > i && s[e - 1] == '\r' ? e - 1 : e;
        bool cont = z > i && (s[i] == ' ' || s[i] == '\t');
        if (!cont && nl) { /* the field before this line is complete */
            field(cur, name, nl, value, vn);
            nl = 0;
        }
        if (cont && nl) {
            for (size_t k = i; k < z && vn + 1 < FIELD_CAP; k++)
                value[vn++] = s[k] == '\t' ? ' ' : s[k];
        } else if (!cont && z > i) {
            const char *colon = memchr(s + i, ':', z - i);
            if (colon && (size_t)(colon - (s + i)) < sizeof(name)) {
                nl = (size_t)(colon - (s + i));
                memcpy(name, s + i, nl);
                while (nl > 0 && (name[nl - 1] == ' ' || name[nl - 1] == '\t'))
                    nl--;
                vn = 0;
                for (const char *p = colon + 1; p < s + z && vn + 1 < FIELD_CAP; p++)
                    value[vn++] = *p == '\t' ? ' ' : *p;
            }
        }
        if (z == i || e >= n) { /* a blank line (or the end) closes a group */
            if (nl)
                field(cur, name, nl, value, vn);
            nl = 0;
            if (better(cur, best, have))
                *best = *cur, have = true;
            memset(cur, 0, sizeof(*cur));
        }
        i = e + 1;
    }
    if (have && !m->bounce_action[0]) {
        sb_free(m->bounce_recipient), sb_free(m->bounce_action);
        sb_free(m->bounce_status), sb_free(m->bounce_diagnostic);
        m->bounce_recipient = address_of(best->final[0] ? best->final : best->original);
        m->bounce_action = action_of(best->action);
        m->bounce_status = status_of(best->status);
        m->bounce_diagnostic = diagnostic_of(best->diag);
    }
    sb_free(cur);
}

/*
 * Read by hand, not with mailimf_fields_parse: libetpan leaks on some broken fields
 * (an unterminated Return-Path), and a bounce returns whatever headers it was given.
 */
char *sb__email_headers_msgid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        if (e - i > 11 && strncasecmp(s + i, "Message-ID:", 11) == 0) {
            /* the value, with its continuation lines */
            size_t a = i + 11, z = e;
            while (z < n && z + 1 < n && (s[z + 1] == ' ' || s[z + 1] == '\t')) {
                const char *more = memchr(s + z + 1, '\n', n - z - 1);
                z = more ? (size_t)(more - s) : n;
            }
            const char *lt = memchr(s + a, '<', z - a);
            const char *gt = lt ? memchr(lt, '>', (size_t)(s + z - lt)) : NULL;
            if (lt && gt && gt > lt + 1)
                return sb__email_header_value(lt + 1, (size_t)(gt - lt - 1), SB_MIME_MAX_MSGID);
            char *v = sb__email_header_value(s + a, z - a, SB_MIME_MAX_MSGID);
            if (*v && !strchr(v, ' '))
                return v;
            sb_free(v);
            return NULL;
        }
        if (e == i || (e == i + 1 && s[i] == '\r')) /* the end of the header block */
            break;
        i = e + 1;
    }
    return NULL;
}
