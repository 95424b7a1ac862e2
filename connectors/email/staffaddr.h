/* SPDX-License-Identifier: MIT */
/*
 * Reply addresses (docs/email.md, "Staff by email"). A staff notification about
 * conversation <cid> is sent with Reply-To `<local>+<cid>.<sig>@<domain>`, where
 * local@domain is the mailbox's address and sig is an HMAC of the conversation and the
 * staff member it was sent to: an answer to it is that staff member's answer only if it
 * comes from their address and carries their signature. Customers' mail may also come to
 * `<local>+<cid>@<domain>` (no signature), which only suggests a conversation (threading
 * still checks who writes). Pure functions, no I/O.
 */
#ifndef SB_EMAIL_STAFFADDR_H
#define SB_EMAIL_STAFFADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

#define SB_STAFFADDR_SIG_LEN 16 /* hex characters of the signature (64 bits) */

/**
 * Writes `<local>+<cid>.<sig>@<domain>` for the mailbox address, a conversation and a staff
 * id into out. 0, or SB_EINVAL (not an address, ids malformed, or the local part would
 * pass 64 characters), SB_ETOOBIG (cap).
 */
int sb_staffaddr_make(const void *secret, size_t secret_len, const char *address, const char *cid,
                      const char *sid, char *out, size_t cap);

/** What a recipient address says about us. */
typedef struct sb_staffaddr {
    char cid[SB_ID_MAX];                /* the conversation named, "" when none */
    char sig[SB_STAFFADDR_SIG_LEN + 1]; /* its signature, "" when none (a customer's) */
} sb_staffaddr_t;

/**
 * Reads rcpt as `<local>+<cid>[.<sig>]@<domain>` of the mailbox address (local and domain
 * compared without case). True and *out when it is one; false for any other address.
 */
bool sb_staffaddr_parse(const char *rcpt, const char *address, sb_staffaddr_t *out);

/** Is sig the signature of (cid, sid)? Constant time. */
bool sb_staffaddr_verify(const void *secret, size_t secret_len, const char *cid, const char *sid,
                         const char *sig);

#endif
