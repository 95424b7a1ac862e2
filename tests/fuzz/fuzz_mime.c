/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes connectors/email/mime.c (one raw message to a clean one, through libetpan) and its
 * hand-written text work (text.c: HTML to text, quote splitting) on the same bytes.
 * Invariants: the parse answers 0 or one of its documented errors; every string of the
 * result is there (never NULL), valid UTF-8 and within its limit; at most
 * SB_MIME_MAX_PARTS attachments, each with a name and a type; the bounce facts (dsn.c)
 * are empty unless the message is a DSN, the status is an RFC 3463 code or empty, the
 * action a lower-case word, a permanent bounce is automatic mail; the fallback id is 64
 * hex digits; HTML to text and the quote split give valid UTF-8 no longer than what they
 * were given allows. The same bytes also go straight to the RFC 2047 word decoder
 * (words.c) and the delivery-status reader (dsn.c). The committed corpus links the fixtures of
 * tests/fixtures/email.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/internal.h"
#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/util.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_mime: %s\n", what);
    abort();
}

static void check_str(const char *s, size_t max, const char *what)
{
    if (!s)
        fail(what);
    size_t n = strlen(s);
    if (n > max || !sb_utf8_valid(s, n))
        fail(what);
}

/* The bounce facts: present, bounded, and shaped as documented in mime.h. */
static void check_bounce(const sb_mime_msg_t *m)
{
    check_str(m->bounce_message_id, SB_MIME_MAX_MSGID, "bounce_message_id");
    check_str(m->bounce_recipient, SB_MAX_EMAIL, "bounce_recipient");
    check_str(m->bounce_status, 15, "bounce_status");
    check_str(m->bounce_action, 15, "bounce_action");
    check_str(m->bounce_diagnostic, SB_MIME_MAX_DIAGNOSTIC, "bounce_diagnostic");
    bool any = *m->bounce_message_id || *m->bounce_recipient || *m->bounce_status ||
               *m->bounce_action || *m->bounce_diagnostic;
    if (any && !(m->flags & SB_MIME_DSN))
        fail("bounce facts without a DSN");
    const char *st = m->bounce_status;
    if (*st && !(st[0] >= '2' && st[0] <= '5' && st[1] == '.' && strchr(st + 2, '.') &&
                 strspn(st, "0123456789.") == strlen(st)))
        fail("a status that is no class.subject.detail code");
    for (const char *p = m->bounce_action; *p; p++)
        if (!islower((unsigned char)*p))
            fail("an action that is no lower-case word");
    if (sb_mime_is_permanent_bounce(m) && !sb_mime_is_automatic(m))
        fail("a permanent bounce that is not automatic mail");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *raw = (const char *)data;
    sb_mime_msg_t m;
    int rc = sb_mime_parse(raw, size, &m);
    if (rc != 0 && rc != SB_EPARSE && rc != SB_EDEPTH && rc != SB_ETOOBIG)
        fail("an undocumented error");
    check_str(m.from_addr, SB_MAX_EMAIL, "from_addr");
    check_str(m.from_name, SB_MAX_NAME, "from_name");
    check_str(m.subject, SB_MAX_SUBJECT, "subject");
    check_str(m.message_id, SB_MIME_MAX_MSGID, "message_id");
    check_str(m.in_reply_to, SB_MIME_MAX_MSGID, "in_reply_to");
    check_str(m.date, 64, "date");
    check_str(m.text, SB_MAX_TEXT, "text");
    check_str(m.quoted, SB_MAX_TEXT, "quoted");
    for (size_t i = 0; i < m.n_references; i++)
        check_str(m.references[i], SB_MIME_MAX_MSGID, "a reference");
    if (m.n_attachments > SB_MIME_MAX_PARTS)
        fail("too many attachments");
    for (size_t i = 0; i < m.n_attachments; i++) {
        check_str(m.attachments[i].name, SB_MAX_NAME, "an attachment's name");
        check_str(m.attachments[i].type, 128, "an attachment's type");
        if (m.attachments[i].size > size)
            fail("an attachment larger than the message");
    }
    check_bounce(&m);
    sb_mime_free(&m);
    char id[SB_MIME_FALLBACK_ID_LEN];
    sb_mime_fallback_id(raw, size, id);
    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64)
        fail("a fallback id that is not 64 hex digits");

    /* the hand-written readers on the raw bytes: encoded words and a delivery status */
    char *words = sb__email_decode_words(raw, size);
    check_str(words, 4 * size + 16, "decode_words");
    sb_free(words);
    sb_mime_msg_t d = {.bounce_message_id = sb_strdup(""),
                       .bounce_recipient = sb_strdup(""),
                       .bounce_status = sb_strdup(""),
                       .bounce_action = sb_strdup(""),
                       .bounce_diagnostic = sb_strdup(""),
                       .flags = SB_MIME_DSN};
    sb__email_dsn_status(&d, raw, size);
    check_bounce(&d);
    sb_free(d.bounce_message_id), sb_free(d.bounce_recipient), sb_free(d.bounce_status);
    sb_free(d.bounce_action), sb_free(d.bounce_diagnostic);

    char *clean = sb__email_utf8_clean(raw, size);
    if (!sb_utf8_valid(clean, strlen(clean)))
        fail("utf8_clean gave invalid UTF-8");
    char *text = sb__email_html_to_text(clean, strlen(clean));
    check_str(text, 2 * strlen(clean) + 64, "html_to_text");
    char *fresh, *quoted;
    sb__email_split_quoted(clean, &fresh, &quoted);
    check_str(fresh, strlen(clean), "fresh");
    check_str(quoted, strlen(clean), "quoted");
    sb_free(fresh), sb_free(quoted), sb_free(text), sb_free(clean);
    return 0;
}
