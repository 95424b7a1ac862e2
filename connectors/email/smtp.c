/* SPDX-License-Identifier: MIT */
/*
 * SMTP answers to delivery outcomes (smtp.h has the table). The server's reply line is
 * the reason staff see; a queue id in a 250 becomes the provider's id.
 */
#include "connectors/email/smtp.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* The queue id of a 250 reply ("250 2.0.0 Ok: queued as 4Xz1", "250 OK id=1rT-00"). */
static bool queue_id(const char *reply, char *out)
{
    static const char *const marks[] = {"queued as ", "id="};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *p = strcasestr(reply, marks[i]);
        if (!p)
            continue;
        p += strlen(marks[i]);
        size_t n = strcspn(p, " \t;,<>()[]\"");
        if (n == 0 || n >= SB_EMAIL_QUEUE_ID_MAX)
            continue;
        memcpy(out, p, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* Replies that mean our credentials, not the message, are the problem. */
static bool auth_reply(long code, const char *reply)
{
    if (code == 530 || code == 534 || code == 535 || code == 538)
        return true;
    return code >= 500 && strlen(reply) > 9 && strncmp(reply + 4, "5.7.8", 5) == 0;
}

void sb_email_smtp_outcome(const sb_httpc_response_t *r, const char *message_id, sb_outcome_t *out,
                           char idbuf[SB_EMAIL_QUEUE_ID_MAX])
{
    memset(out, 0, sizeof(*out));
    const char *reply = r->reply && *r->reply ? r->reply : NULL;
    const char *why = reply ? reply : r->error && *r->error ? r->error : "no answer";
    if (r->status == 0) {
        out->kind = SB_OUTCOME_OK;
        out->provider_id = reply && queue_id(reply, idbuf) ? idbuf : message_id;
        return;
    }
    out->reason = why;
    switch (r->cause) {
    case SB_HTTPC_CAUSE_TLS:
        out->kind = SB_OUTCOME_AUTH;
        out->reason = r->error && *r->error ? r->error : "TLS failed";
        return;
    case SB_HTTPC_CAUSE_LOGIN:
        out->kind = SB_OUTCOME_AUTH;
        return;
    case SB_HTTPC_CAUSE_REPLY:
        if (auth_reply(r->code, reply ? reply : ""))
            out->kind = SB_OUTCOME_AUTH;
        else
            out->kind = r->code >= 500 ? SB_OUTCOME_PERMANENT : SB_OUTCOME_TEMPORARY;
        return;
    default: /* network, deadline, canceled */
        out->kind = SB_OUTCOME_TEMPORARY;
        out->reason = r->error && *r->error ? r->error : why;
        return;
    }
}
