/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes what outbound mail does with text that came from customers and servers:
 * connectors/email/compose.c (names, subject, ids, text) and the SMTP reply reading of
 * connectors/email/smtp.c. The input is split at 0x01 bytes into: flags, the customer's
 * name, subject, In-Reply-To, two References, a conversation id, a server reply line, and
 * the text. Invariants: compose answers 0, SB_EINVAL or SB_ETOOBIG (and *out NULL on an
 * error); a composed mail has only CRLF line ends, lines of at most 998 bytes, a head made
 * only of our own headers and their folded continuations (no text ever becomes a header),
 * and reads back with sb_mime_parse with our Message-ID; the outcome is one of the five
 * kinds, with a reason unless ok and a queue id within its buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/compose.h"
#include "connectors/email/mime.h"
#include "connectors/email/smtp.h"
#include "core/alloc.h"
#include "core/err.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_compose: %s\n", what);
    abort();
}

static const char *const ours[] = {"Date",
                                   "From",
                                   "To",
                                   "Reply-To",
                                   "Subject",
                                   "Message-ID",
                                   "In-Reply-To",
                                   "References",
                                   "MIME-Version",
                                   "Auto-Submitted",
                                   "X-Auto-Response-Suppress",
                                   "X-Switchboard-Conversation",
                                   "Content-Type"};

static void check_mail(const char *m, size_t n)
{
    if (strlen(m) != n || n > SB_EMAIL_COMPOSE_MAX)
        fail("length");
    bool head = true;
    for (const char *p = m; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol || eol - p > 998 || memchr(p, '\n', (size_t)(eol - p)) ||
            memchr(p, '\r', (size_t)(eol - p)))
            fail("a line without CRLF, too long, or with a bare CR or LF");
        if (head && eol == p) {
            head = false;
        } else if (head && *p != ' ') {
            bool known = false;
            for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
                size_t k = strlen(ours[i]);
                known = known || (strncmp(p, ours[i], k) == 0 && p[k] == ':');
            }
            if (!known)
                fail("a header we did not write");
        }
        p = eol + 2;
    }
    sb_mime_msg_t parsed;
    int rc = sb_mime_parse(m, n, &parsed);
    if (rc != 0 || strcmp(parsed.message_id, "sb.m_fuzz@example.org") != 0)
        fail("the mail does not read back");
    sb_mime_free(&parsed);
}

static void check_outcome(const char *reply, uint8_t f)
{
    static const int statuses[] = {0, SB_EIO, SB_ETIMEDOUT, SB_ECANCELED};
    sb_httpc_response_t r = {.status = statuses[f & 3],
                             .error = "err",
                             .code = 200 + (long)(f >> 2) * 10,
                             .body = "",
                             .headers = "",
                             .cause = (sb_httpc_cause_t)(f % 5),
                             .reply = reply};
    sb_outcome_t o;
    char idbuf[SB_EMAIL_QUEUE_ID_MAX];
    sb_email_smtp_outcome(&r, "sb.m_fuzz@example.org", &o, idbuf);
    if (o.kind > SB_OUTCOME_AUTH || (o.kind != SB_OUTCOME_OK && !o.reason))
        fail("outcome");
    if (o.kind == SB_OUTCOME_OK && (!o.provider_id || strlen(o.provider_id) == 0 ||
                                    strlen(o.provider_id) >= SB_EMAIL_QUEUE_ID_MAX + 32))
        fail("provider id");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *buf = sb_malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *field[8] = {0};
    size_t nf = 0;
    for (char *p = buf; nf < 8;) {
        field[nf++] = p;
        char *sep = nf < 8 ? strchr(p, '\x01') : NULL;
        if (!sep)
            break;
        *sep = '\0';
        p = sep + 1;
    }
    uint8_t flags = field[0] && *field[0] ? (uint8_t)*field[0] : 0;
    const char *refs[2] = {field[4] ? field[4] : "a@b", field[5] ? field[5] : "c@d"};
    sb_email_compose_t c = {.from_addr = "support@example.org",
                            .from_name = "Support",
                            .to_addr = "ana@customer.test",
                            .to_name = field[1],
                            .subject = field[2],
                            .reply = flags & 1,
                            .msg_id = "m_fuzz",
                            .in_reply_to = field[3],
                            .references = refs,
                            .n_references = flags & 2 ? 2 : 0,
                            .date_ms = (int64_t)flags * 86400000LL * 400,
                            .automatic = (sb_email_auto_t)((flags >> 2) % 3),
                            .conversation = flags & 16 ? field[6] : NULL,
                            .text = field[7] ? field[7] : ""};
    static char poison[] = "x"; /* compose must set *out to NULL on an error */
    char *out = poison;
    size_t n = 0;
    int rc = sb_email_compose(&c, &out, &n);
    if (rc == 0)
        check_mail(out, n);
    else if ((rc != SB_EINVAL && rc != SB_ETOOBIG) || out)
        fail("compose's answer");
    sb_free(out);
    check_outcome(field[6] ? field[6] : "", flags);
    sb_free(buf);
    return 0;
}
