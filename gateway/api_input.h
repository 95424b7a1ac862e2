/* SPDX-License-Identifier: MIT */
/*
 * Shared within gateway/: the checks of request fields of the REST API (docs/contract.md §9, the
 * bounds listed in docs/hardening-api.md). Every check runs before anything reaches
 * Redis; a bad field is answered 400 `bad_request` (413 `too_large` for an oversized
 * text) with a message naming the field, the call is freed, and the check returns false.
 * `field` is the name the message uses ("contact.email"); its last part is the member.
 */
#ifndef SB_GATEWAY_API_INPUT_H
#define SB_GATEWAY_API_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "gateway/internal.h"

#define SB_API_MAX_TAGS        50   /* tags on a conversation */
#define SB_API_MAX_TAG         64   /* bytes of one tag */
#define SB_API_MAX_ATTACHMENTS 20   /* attachments of one message */
#define SB_API_MAX_URL         8000 /* an attachment's url (RFC 9110 §4.1's minimum) */
#define SB_API_MAX_EXT         16   /* members of `ext` */
#define SB_API_MAX_EXT_VALUE   1000 /* bytes of one `ext` string */
#define SB_API_MAX_REASON      1000 /* a handoff's reason */
#define SB_API_MAX_SNOOZE_MS   (366LL * 24 * 3600 * 1000)

/** A required text (a message or note body): non-empty, ≤ max bytes, valid UTF-8. */
bool sb__api_text(api_call_t *c, const char *field, const json_t *v, size_t max);
/** An optional string ≤ max bytes (NULL when absent or null); newlines allowed. */
bool sb__api_opt_str(api_call_t *c, const json_t *obj, const char *field, size_t max,
                     const char **out);
/** An optional one-line string ≤ max bytes without control characters (sb_line_check). */
bool sb__api_opt_line(api_call_t *c, const json_t *obj, const char *field, size_t max,
                      const char **out);
/** An optional flag: absent or null is false, else it must be a JSON boolean. */
bool sb__api_opt_bool(api_call_t *c, const json_t *obj, const char *field, bool *out);
/** An optional seq (sb_seq_valid), as `after` and `based_on` are. Empty counts as absent. */
bool sb__api_seq(api_call_t *c, const char *field, const char *s);
/** A decimal count in min..max (a query parameter such as `limit`). */
bool sb__api_count(api_call_t *c, const char *field, const char *s, long min, long max, long *out);
/** The optional `attachments` array and `ext` object of an inbound message. */
bool sb__api_attachments(api_call_t *c, json_t *att);
bool sb__api_ext(api_call_t *c, json_t *ext);
/** The body of a state change (claim, snooze, priority, tags, handoff…) for `action`. */
bool sb__api_act_args(api_call_t *c, const char *action);

/** POST /v1/inbound (api_inbound.c). */
void sb__api_inbound_routes(sb_app_t *app);

#endif
