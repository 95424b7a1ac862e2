/* SPDX-License-Identifier: MIT */
/*
 * The addresses a message was sent to, as its headers say: To, Cc and the headers
 * delivery agents add for the envelope recipient (Delivered-To, X-Original-To,
 * Envelope-To). Plus addresses (`support+c_….sig@…`) survive there when a mail client's
 * Reply-To was used, so a reply can be told apart from a new mail. libetpan's RFC 5322
 * parser does the reading.
 */
#ifndef SB_EMAIL_RCPT_H
#define SB_EMAIL_RCPT_H

#include <stddef.h>

#define SB_RCPT_MAX 64 /* addresses kept; the rest are ignored */

typedef struct sb_rcpt {
    char **addr; /* addr-specs, lower case, in header order, without duplicates */
    size_t n;
} sb_rcpt_t;

/** Reads the header of raw[0..n). Always fills out (possibly empty); free with sb_rcpt_free. */
void sb_rcpt_parse(const char *raw, size_t n, sb_rcpt_t *out);
void sb_rcpt_free(sb_rcpt_t *r);

#endif
