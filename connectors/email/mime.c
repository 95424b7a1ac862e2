/* SPDX-License-Identifier: MIT */
/*
 * Raw RFC 5322 message → sb_mime_msg_t (see mime.h).
 *
 * libetpan does the parsing: mailmime_parse splits the message and its parts and parses
 * the headers (mailimf), mailmime_part_parse undoes quoted-printable and base64,
 * and charconv_buffer converts every charset to UTF-8 (charset.c, with the labels read
 * as browsers read them). What is written here by hand, and why:
 *  - RFC 2047 words (words.c): libetpan converts each word alone, which breaks a
 *    character split between two words.
 *  - RFC 2231 parameters (filename*=UTF-8''…, continuations filename*0*=…): libetpan hands
 *    them over as raw parameters; we join the pieces, undo the %XX and convert the charset.
 *  - HTML to text and the splitting of quoted history and signatures (text.c): libetpan has
 *    neither, and a browser engine or an HTML library would be a large dependency for
 *    what is a small, bounded walk over the text.
 *  - A nesting bound before parsing: libetpan's parser recurses once per nested multipart
 *    or message and has no limit of its own. Every level needs a "multipart" or "message/"
 *    in the raw text, so counting those (case-insensitive) bounds its recursion.
 *  - Dropping header-block lines that are no field: libetpan ends the header block there.
 *  - The bounces' delivery-status and returned headers (dsn.c): libetpan reads neither.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "connectors/email/internal.h"
#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

static char *dup_cut(const char *s, size_t max)
{
    char *clean = sb__email_utf8_clean(s ? s : "", s ? strlen(s) : 0);
    clean[sb__email_utf8_cut(clean, strlen(clean), max)] = '\0';
    return clean;
}

/* An RFC 2047 header value (raw, as in the message) to UTF-8, cut to max bytes. */
static char *decode_words(const char *s, size_t max)
{
    if (!s)
        return sb_strdup("");
    char *dec = sb__email_decode_words(s, strlen(s));
    char *out = dup_cut(dec, max);
    sb_free(dec);
    /* unfolded: a header's line breaks are not part of its value */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    return out;
}

/* ---- headers ---- */

static char *msgid(const char *s)
{
    return dup_cut(s, SB_MIME_MAX_MSGID);
}

static void format_date(const struct mailimf_date_time *d, char *out, size_t cap)
{
    int z = d->dt_zone < 0 ? -d->dt_zone : d->dt_zone;
    /* obsolete two- and three-digit years (RFC 5322 §4.3) */
    int year = d->dt_year < 50     ? d->dt_year + 2000
               : d->dt_year < 1000 ? d->dt_year + 1900
                                   : d->dt_year;
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", year, d->dt_month, d->dt_day,
             d->dt_hour, d->dt_min, d->dt_sec, d->dt_zone < 0 ? '-' : '+', (z / 100) % 100,
             z % 100);
}

static bool value_is(const char *v, const char *word)
{
    while (v && isspace((unsigned char)*v))
        v++;
    size_t k = strlen(word);
    return v && strncasecmp(v, word, k) == 0 &&
           (v[k] == '\0' || v[k] == ';' || isspace((unsigned char)v[k]));
}

/* "<>", the null reverse-path bounces are sent from (libetpan leaves it unparsed) */
static bool null_path(const char *v)
{
    while (v && (*v == ' ' || *v == '\t'))
        v++;
    if (!v || *v++ != '<')
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v++ != '>')
        return false;
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    return *v == '\0';
}

static void optional_field(sb_mime_msg_t *m, const struct mailimf_optional_field *f)
{
    const char *name = f->fld_name, *v = f->fld_value;
    if (strcasecmp(name, "Auto-Submitted") == 0 && !value_is(v, "no"))
        m->flags |= SB_MIME_AUTO_SUBMITTED;
    else if (strcasecmp(name, "Precedence") == 0 &&
             (value_is(v, "bulk") || value_is(v, "junk") || value_is(v, "list")))
        m->flags |= SB_MIME_PRECEDENCE;
    else if (strcasecmp(name, "X-Autoreply") == 0 || strcasecmp(name, "X-Autorespond") == 0)
        m->flags |= SB_MIME_AUTOREPLY;
    else if (strcasecmp(name, "List-Id") == 0)
        m->flags |= SB_MIME_LIST;
    else if (strcasecmp(name, "X-Auto-Response-Suppress") == 0)
        m->flags |= SB_MIME_AUTO_RESPONSE_SUPPRESS;
    else if (strcasecmp(name, "Return-Path") == 0 && null_path(v))
        m->flags |= SB_MIME_MAILER_DAEMON;
}

/* mailer-daemon@…, postmaster@… (or the bare local part): who sends bounces */
static bool daemon_address(const char *addr)
{
    size_t local = strcspn(addr, "@");
    return (local == 13 && strncasecmp(addr, "mailer-daemon", 13) == 0) ||
           (local == 10 && strncasecmp(addr, "postmaster", 10) == 0);
}

/*
 * References, at most SB_MIME_MAX_REFS: past that the first (the thread's root) and the
 * last ones (the nearest parents) are kept, as RFC 5322 §3.6.4 asks of a client that trims.
 */
static void id_list(clist *ids, char ***out, size_t *n)
{
    if (!ids)
        return;
    size_t count = 0, i = 0;
    for (clistiter *it = clist_begin(ids); it; it = clist_next(it))
        count++;
    size_t skip = count > SB_MIME_MAX_REFS ? count - SB_MIME_MAX_REFS : 0;
    *out = sb_calloc(count - skip ? count - skip : 1, sizeof(char *));
    for (clistiter *it = clist_begin(ids); it; it = clist_next(it), i++)
        if (i == 0 || i > skip)
            (*out)[(*n)++] = msgid(clist_content(it));
}

static void headers(sb_mime_msg_t *m, const struct mailimf_fields *fields)
{
    for (clistiter *it = fields ? clist_begin(fields->fld_list) : NULL; it; it = clist_next(it)) {
        const struct mailimf_field *f = clist_content(it);
        switch (f->fld_type) {
        case MAILIMF_FIELD_FROM: {
            clist *mbs = f->fld_data.fld_from->frm_mb_list->mb_list;
            const struct mailimf_mailbox *mb =
                clist_begin(mbs) ? clist_content(clist_begin(mbs)) : NULL;
            if (mb && !*m->from_addr) {
                sb_free(m->from_addr), sb_free(m->from_name);
                m->from_addr = dup_cut(mb->mb_addr_spec, SB_MAX_EMAIL);
                m->from_name = decode_words(mb->mb_display_name, SB_MAX_NAME);
                if (daemon_address(m->from_addr))
                    m->flags |= SB_MIME_MAILER_DAEMON;
            }
            break;
        }
        case MAILIMF_FIELD_RETURN_PATH: {
            const struct mailimf_path *p = f->fld_data.fld_return_path->ret_path;
            if (!p || !p->pt_addr_spec || !*p->pt_addr_spec) /* the null sender, <> */
                m->flags |= SB_MIME_MAILER_DAEMON;
            break;
        }
        case MAILIMF_FIELD_SUBJECT:
            sb_free(m->subject);
            m->subject = decode_words(f->fld_data.fld_subject->sbj_value, SB_MAX_SUBJECT);
            break;
        case MAILIMF_FIELD_MESSAGE_ID:
            sb_free(m->message_id);
            m->message_id = msgid(f->fld_data.fld_message_id->mid_value);
            break;
        case MAILIMF_FIELD_IN_REPLY_TO: {
            clist *ids = f->fld_data.fld_in_reply_to->mid_list;
            if (ids && clist_begin(ids)) {
                sb_free(m->in_reply_to);
                m->in_reply_to = msgid(clist_content(clist_begin(ids)));
            }
            break;
        }
        case MAILIMF_FIELD_REFERENCES:
            if (!m->references)
                id_list(f->fld_data.fld_references->mid_list, &m->references, &m->n_references);
            break;
        case MAILIMF_FIELD_ORIG_DATE: {
            char d[64];
            format_date(f->fld_data.fld_orig_date->dt_date_time, d, sizeof(d));
            sb_free(m->date);
            m->date = sb_strdup(d);
            break;
        }
        case MAILIMF_FIELD_OPTIONAL_FIELD:
            optional_field(m, f->fld_data.fld_optional_field);
            break;
        default:
            break;
        }
    }
}

/* ---- parts ---- */

/* "type/subtype" in lower case; "text/plain" when the part says nothing. */
static void type_of(const struct mailmime_content *ct, char *out, size_t cap)
{
    const char *t = "text", *sub = "plain";
    if (ct && ct->ct_type) {
        const struct mailmime_type *ty = ct->ct_type;
        if (ty->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
            static const char *const d[] = {"x", "text", "image", "audio", "video", "application"};
            int k = ty->tp_data.tp_discrete_type->dt_type;
            t = k == MAILMIME_DISCRETE_TYPE_EXTENSION ? ty->tp_data.tp_discrete_type->dt_extension
                : k >= 0 && k < 6                     ? d[k]
                                                      : "x";
        } else {
            int k = ty->tp_data.tp_composite_type->ct_type;
            t = k == MAILMIME_COMPOSITE_TYPE_MESSAGE     ? "message"
                : k == MAILMIME_COMPOSITE_TYPE_MULTIPART ? "multipart"
                                                         : ty->tp_data.tp_composite_type->ct_token;
        }
        sub = ct->ct_subtype;
    }
    snprintf(out, cap, "%s/%s", t ? t : "x", sub ? sub : "x");
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

typedef struct param {
    const char *name, *value;
} param_t;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * The parameter `base` of a part (RFC 2231: base*=charset'lang'%XX…, or its pieces
 * base*0*, base*1…; else base="…" with RFC 2047 words). NULL when absent.
 */
static char *param_value(const param_t *p, size_t n, const char *base)
{
    size_t k = strlen(base);
    const char *plain = NULL;
    char charset[64] = "";
    sb_buf_t b;
    sb_buf_init(&b, SB_MAX_NAME * 4);
    bool found = false;
    for (int seg = -1; seg < 32; seg++) {
        bool got = false;
        for (size_t i = 0; i < n && !got; i++) {
            const char *name = p[i].name, *v = p[i].value;
            if (!name || !v || strncasecmp(name, base, k) != 0)
                continue;
            const char *rest = name + k;
            if (seg == -1 && *rest == '\0') {
                plain = v;
                continue;
            }
            if (*rest != '*')
                continue;
            rest++;
            bool encoded;
            if (seg == -1) {
                if (*rest != '\0')
                    continue;
                encoded = true;
            } else {
                char num[8];
                snprintf(num, sizeof(num), "%d", seg);
                size_t nl = strlen(num);
                if (strncmp(rest, num, nl) != 0 ||
                    (rest[nl] != '\0' && strcmp(rest + nl, "*") != 0))
                    continue;
                encoded = rest[nl] == '*';
            }
            got = true;
            if (encoded && seg <= 0) { /* charset'language'value */
                const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
                if (q1 && q2) {
                    snprintf(charset, sizeof(charset), "%.*s", (int)(q1 - v), v);
                    v = q2 + 1;
                }
            }
            for (; *v; v++) {
                int h = encoded && v[0] == '%' && v[1] ? hexval(v[1]) : -1;
                int l = h >= 0 ? hexval(v[2]) : -1;
                if (h >= 0 && l >= 0) {
                    char c = (char)(h * 16 + l);
                    sb_buf_append(&b, &c, 1);
                    v += 2;
                } else {
                    sb_buf_append(&b, v, 1);
                }
            }
        }
        found |= got;
        if (seg == -1 && got)
            break;
        if (seg >= 0 && !got)
            break;
    }
    char *out = NULL;
    if (found)
        out = sb__email_to_utf8(charset[0] ? charset : "utf-8", b.data ? b.data : "", b.len);
    else if (plain)
        out = decode_words(plain, SB_MAX_NAME);
    sb_buf_dispose(&b);
    if (out)
        out[sb__email_utf8_cut(out, strlen(out), SB_MAX_NAME)] = '\0';
    return out;
}

typedef struct walk {
    sb_mime_msg_t *m;
    char *plain, *html; /* the inline text/plain and text/html, UTF-8 */
    bool mixed;         /* the part being read is a child of a multipart/mixed */
    char *returned_id;  /* a bounce's returned original's Message-ID */
    bool guessed;       /* a missing boundary was guessed once already */
} walk_t;

static bool param_is(const param_t *p, size_t n, const char *name, const char *value)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].name && p[i].value && strcasecmp(p[i].name, name) == 0 &&
            value_is(p[i].value, value))
            return true;
    return false;
}

/* A text part's body as UTF-8, format=flowed unwrapped. */
static char *text_body(const char *type, const param_t *p, size_t np, const char *charset,
                       const char *dec, size_t len)
{
    char *t = sb__email_to_utf8(charset, dec, len);
    if (strcmp(type, "text/plain") != 0 || !param_is(p, np, "format", "flowed"))
        return t;
    char *u = sb__email_unflow(t, strlen(t), param_is(p, np, "delsp", "yes"));
    sb_free(t);
    return u;
}

static void add_attachment(walk_t *w, char *name, const char *type, const char *data, size_t n)
{
    sb_mime_msg_t *m = w->m;
    if (m->n_attachments >= SB_MIME_MAX_PARTS) {
        sb_free(name);
        return;
    }
    if (!m->attachments)
        m->attachments = sb_calloc(SB_MIME_MAX_PARTS, sizeof(*m->attachments));
    sb_mime_attachment_t *a = &m->attachments[m->n_attachments++];
    a->name = name ? name : sb_strdup("");
    a->type = sb_strdup(type);
    a->data = sb_malloc(n ? n : 1);
    memcpy(a->data, data, n);
    a->size = n;
}

/* A bounce's parts: the delivery status, the returned headers (RFC 3464, RFC 6522). */
static void report_part(walk_t *w, const char *type, const char *s, size_t n)
{
    if (strcmp(type, "message/delivery-status") == 0 ||
        strcmp(type, "message/global-delivery-status") == 0)
        sb__email_dsn_status(w->m, s, n);
    else if (!w->returned_id && (strcmp(type, "text/rfc822-headers") == 0 ||
                                 strcmp(type, "message/global-headers") == 0))
        w->returned_id = sb__email_headers_msgid(s, n);
}

/* A part's Content-Type parameters, its disposition and its file name. */
typedef struct part_info {
    param_t params[32];
    size_t np;
    bool attachment; /* Content-Disposition: attachment */
    char *name;      /* the file name (UTF-8, owned), NULL when none */
} part_info_t;

static void part_info(const struct mailmime *part, part_info_t *pi)
{
    pi->np = 0, pi->attachment = false;
    if (part->mm_content_type && part->mm_content_type->ct_parameters)
        for (clistiter *it = clist_begin(part->mm_content_type->ct_parameters); it && pi->np < 32;
             it = clist_next(it)) {
            const struct mailmime_parameter *p = clist_content(it);
            pi->params[pi->np++] = (param_t){p->pa_name, p->pa_value};
        }
    const struct mailmime_disposition *disp = NULL;
    if (part->mm_mime_fields)
        for (clistiter *it = clist_begin(part->mm_mime_fields->fld_list); it && !disp;
             it = clist_next(it)) {
            const struct mailmime_field *f = clist_content(it);
            if (f->fld_type == MAILMIME_FIELD_DISPOSITION)
                disp = f->fld_data.fld_disposition;
        }
    param_t dparams[32];
    size_t nd = 0;
    if (disp) {
        pi->attachment = disp->dsp_type->dsp_type == MAILMIME_DISPOSITION_TYPE_ATTACHMENT;
        for (clistiter *it = clist_begin(disp->dsp_parms); it && nd < 32; it = clist_next(it)) {
            const struct mailmime_disposition_parm *p = clist_content(it);
            if (p->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME)
                dparams[nd++] = (param_t){"filename", p->pa_data.pa_filename};
            else if (p->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER)
                dparams[nd++] =
                    (param_t){p->pa_data.pa_parameter->pa_name, p->pa_data.pa_parameter->pa_value};
        }
    }
    pi->name = param_value(dparams, nd, "filename");
    if (!pi->name)
        pi->name = param_value(pi->params, pi->np, "name");
}

/* A message inside a message: its file name, else "message.eml". */
static char *message_name(const struct mailmime *part)
{
    part_info_t pi;
    part_info(part, &pi);
    if (pi.name && *pi.name)
        return pi.name;
    sb_free(pi.name);
    return sb_strdup("message.eml");
}

/*
 * A part's bytes with its transfer encoding undone (mailmime_decoded_part_free), NULL on
 * failure. libetpan's quoted-printable decoder reads two bytes past a part that ends
 * inside an escape ("…=3"), so it reads a copy followed by zeros, never the message.
 */
static char *decode_part(const struct mailmime_data *d, size_t *len)
{
    size_t n = d->dt_data.dt_text.dt_length, idx = 0;
    char *copy = sb_malloc(n + 4), *dec = NULL;
    memcpy(copy, d->dt_data.dt_text.dt_data, n);
    memset(copy + n, 0, 4);
    if (mailmime_part_parse(copy, n, &idx, d->dt_encoding, &dec, len) != MAILIMF_NO_ERROR)
        dec = NULL;
    sb_free(copy);
    return dec;
}

static void single(walk_t *w, struct mailmime *part)
{
    char type[128];
    type_of(part->mm_content_type, type, sizeof(type));
    const struct mailmime_data *d = part->mm_data.mm_single;
    if (!d || d->dt_type != MAILMIME_DATA_TEXT)
        return;
    part_info_t pi;
    part_info(part, &pi);
    char *name = pi.name;
    const param_t *params = pi.params;
    size_t np = pi.np;
    bool attachment = pi.attachment;
    size_t len = 0;
    char *dec = decode_part(d, &len);
    if (!dec) {
        sb_free(name);
        return;
    }
    if (w->m->flags & SB_MIME_DSN)
        report_part(w, type, dec, len);
    bool text = strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0;
    if (text && !attachment && !name) {
        char **slot = type[5] == 'p' ? &w->plain : &w->html;
        const char *charset = mailmime_content_charset_get(part->mm_content_type);
        if (!*slot) {
            *slot = text_body(type, params, np, charset, dec, len);
        } else if (w->mixed) { /* Apple Mail's text, image, text: one text */
            char *more = text_body(type, params, np, charset, dec, len);
            sb_buf_t b;
            sb_buf_init(&b, strlen(*slot) + strlen(more) + 3);
            sb_buf_append(&b, *slot, strlen(*slot));
            sb_buf_append(&b, "\n\n", 2);
            sb_buf_append(&b, more, strlen(more));
            sb_free(*slot), sb_free(more);
            *slot = sb_buf_steal(&b, NULL);
            sb_buf_dispose(&b);
        } else {
            add_attachment(w, NULL, type, dec, len);
        }
    } else {
        add_attachment(w, name, type, dec, len);
    }
    mailmime_decoded_part_free(dec);
}

static char *returned_id(const struct mailimf_fields *fields)
{
    for (clistiter *it = fields ? clist_begin(fields->fld_list) : NULL; it; it = clist_next(it)) {
        const struct mailimf_field *f = clist_content(it);
        if (f->fld_type == MAILIMF_FIELD_MESSAGE_ID && f->fld_data.fld_message_id->mid_value)
            return msgid(f->fld_data.fld_message_id->mid_value);
    }
    return NULL;
}

static int walk(walk_t *w, struct mailmime *part, int depth);

/*
 * A multipart without a boundary parameter, which libetpan leaves one part: the boundary
 * is guessed from the first line that looks like one and the part is parsed again (once
 * per message, so a hostile message cannot make copy after copy). False when this is no
 * such part or nothing could be guessed; *rc is walk's answer otherwise.
 */
static bool guessed_multipart(walk_t *w, struct mailmime *part, int depth, int *rc)
{
    char type[128];
    type_of(part->mm_content_type, type, sizeof(type));
    const struct mailmime_data *d = part->mm_data.mm_single;
    if (w->guessed || strncmp(type, "multipart/", 10) != 0 || !d ||
        d->dt_type != MAILMIME_DATA_TEXT)
        return false;
    w->guessed = true;
    const char *s = d->dt_data.dt_text.dt_data, *bd = NULL;
    size_t n = d->dt_data.dt_text.dt_length, bn = sb__email_guess_boundary(s, n, &bd);
    if (!bn)
        return false;
    sb_buf_t b;
    sb_buf_init(&b, n + 256);
    sb_buf_printf(&b, "Content-Type: %s; boundary=\"%.*s\"\r\n\r\n", type, (int)bn, bd);
    sb_buf_append(&b, s, n);
    size_t idx = 0;
    struct mailmime *root = NULL;
    bool done = false;
    if (b.data && mailmime_parse(b.data, b.len, &idx, &root) == MAILIMF_NO_ERROR && root) {
        struct mailmime *body =
            root->mm_type == MAILMIME_MESSAGE ? root->mm_data.mm_message.mm_msg_mime : root;
        if (body && body->mm_type == MAILMIME_MULTIPLE) {
            *rc = walk(w, body, depth);
            done = true;
        }
    }
    if (root)
        mailmime_free(root);
    sb_buf_dispose(&b);
    return done;
}

static int walk(walk_t *w, struct mailmime *part, int depth)
{
    if (depth > SB_MIME_MAX_DEPTH)
        return SB_EDEPTH;
    switch (part->mm_type) {
    case MAILMIME_SINGLE: {
        int rc = 0;
        if (!guessed_multipart(w, part, depth, &rc))
            single(w, part);
        return rc;
    }
    case MAILMIME_MULTIPLE: {
        char type[128];
        type_of(part->mm_content_type, type, sizeof(type));
        bool was_mixed = w->mixed;
        w->mixed = strcmp(type, "multipart/mixed") == 0;
        for (clistiter *it = clist_begin(part->mm_data.mm_multipart.mm_mp_list); it;
             it = clist_next(it)) {
            int rc = walk(w, clist_content(it), depth + 1);
            if (rc) {
                w->mixed = was_mixed;
                return rc;
            }
        }
        w->mixed = was_mixed;
        return 0;
    }
    case MAILMIME_MESSAGE:
        if (depth == 0)
            return part->mm_data.mm_message.mm_msg_mime
                       ? walk(w, part->mm_data.mm_message.mm_msg_mime, depth + 1)
                       : 0;
        /* a message inside (forwarded, or a bounce's original): listed, not read */
        if ((w->m->flags & SB_MIME_DSN) && !w->returned_id)
            w->returned_id = returned_id(part->mm_data.mm_message.mm_fields);
        if (part->mm_body && part->mm_body->dt_type == MAILMIME_DATA_TEXT)
            add_attachment(w, message_name(part), "message/rfc822",
                           part->mm_body->dt_data.dt_text.dt_data,
                           part->mm_body->dt_data.dt_text.dt_length);
        return 0;
    default:
        return 0;
    }
}

/* libetpan recurses once per such word at most; 64 levels are harmless to its stack */
#define SB_MIME_MAX_NESTING_WORDS 64

static void set_text(sb_mime_msg_t *m, char *full)
{
    char *fresh, *quoted;
    sb__email_split_quoted(full, &fresh, &quoted);
    sb_free(full);
    size_t fl = strlen(fresh), ql = strlen(quoted);
    size_t fc = sb__email_utf8_cut(fresh, fl, SB_MAX_TEXT),
           qc = sb__email_utf8_cut(quoted, ql, SB_MAX_TEXT);
    m->truncated = fc < fl || qc < ql;
    fresh[fc] = '\0', quoted[qc] = '\0';
    m->text = fresh, m->quoted = quoted;
}

/* The original's Message-ID; else what the DSN says it answers (In-Reply-To, References). */
static void set_bounce_id(sb_mime_msg_t *m, const char *returned)
{
    const char *id = returned && *returned ? returned
                     : *m->in_reply_to     ? m->in_reply_to
                     : m->n_references     ? m->references[m->n_references - 1]
                                           : "";
    sb_free(m->bounce_message_id);
    m->bounce_message_id = sb_strdup(id);
}

int sb_mime_parse(const char *raw, size_t n, sb_mime_msg_t *m)
{
    if (!m)
        return SB_EINVAL;
    memset(m, 0, sizeof(*m));
    m->from_addr = sb_strdup(""), m->from_name = sb_strdup(""), m->subject = sb_strdup("");
    m->message_id = sb_strdup(""), m->in_reply_to = sb_strdup(""), m->date = sb_strdup("");
    m->text = NULL, m->quoted = NULL;
    m->bounce_message_id = sb_strdup(""), m->bounce_recipient = sb_strdup("");
    m->bounce_status = sb_strdup(""), m->bounce_action = sb_strdup("");
    m->bounce_diagnostic = sb_strdup("");
    if (!raw) {
        m->text = sb_strdup(""), m->quoted = sb_strdup("");
        return SB_EINVAL;
    }
    if (n > SB_MIME_MAX_INPUT) {
        m->text = sb_strdup(""), m->quoted = sb_strdup("");
        return SB_ETOOBIG;
    }
    if (sb__email_nesting_words(raw, n) > SB_MIME_MAX_NESTING_WORDS) {
        m->text = sb_strdup(""), m->quoted = sb_strdup("");
        return SB_EDEPTH;
    }
    size_t idx = 0, fixed_n = 0;
    char *fixed = sb__email_repair_headers(raw, n, &fixed_n);
    if (fixed)
        raw = fixed, n = fixed_n;
    struct mailmime *root = NULL;
    if (mailmime_parse(raw, n, &idx, &root) != MAILIMF_NO_ERROR || !root) {
        m->text = sb_strdup(""), m->quoted = sb_strdup("");
        sb_free(fixed);
        return SB_EPARSE;
    }
    if (root->mm_type == MAILMIME_MESSAGE)
        headers(m, root->mm_data.mm_message.mm_fields);
    struct mailmime *body =
        root->mm_type == MAILMIME_MESSAGE ? root->mm_data.mm_message.mm_msg_mime : root;
    if (body) {
        char type[128];
        type_of(body->mm_content_type, type, sizeof(type));
        if (strcmp(type, "multipart/report") == 0)
            m->flags |= SB_MIME_DSN;
    }
    walk_t w = {.m = m};
    int rc = walk(&w, root, 0);
    char *full;
    if (w.plain)
        full = w.plain, w.plain = NULL;
    else if (w.html)
        full = sb__email_html_to_text(w.html, strlen(w.html));
    else
        full = sb_strdup("");
    sb_free(w.plain);
    sb_free(w.html);
    set_text(m, full);
    if (*m->bounce_action || *m->bounce_recipient) /* a delivery-status part was read */
        set_bounce_id(m, w.returned_id);
    sb_free(w.returned_id);
    mailmime_free(root);
    sb_free(fixed); /* after root: its parts point into it */
    return rc;
}

void sb_mime_free(sb_mime_msg_t *m)
{
    if (!m)
        return;
    sb_free(m->from_addr), sb_free(m->from_name), sb_free(m->subject);
    sb_free(m->message_id), sb_free(m->in_reply_to), sb_free(m->date);
    for (size_t i = 0; i < m->n_references; i++)
        sb_free(m->references[i]);
    sb_free(m->references);
    sb_free(m->text), sb_free(m->quoted);
    sb_free(m->bounce_message_id), sb_free(m->bounce_recipient), sb_free(m->bounce_status);
    sb_free(m->bounce_action), sb_free(m->bounce_diagnostic);
    for (size_t i = 0; i < m->n_attachments; i++) {
        sb_free(m->attachments[i].name);
        sb_free(m->attachments[i].type);
        sb_free(m->attachments[i].data);
    }
    sb_free(m->attachments);
    memset(m, 0, sizeof(*m));
}
