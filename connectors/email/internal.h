/* SPDX-License-Identifier: MIT */
/* The email folder's own helpers (connectors/email/text.c), shared by its files only. */
#ifndef SB_EMAIL_INTERNAL_H
#define SB_EMAIL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "connectors/email/mime.h"

/**
 * s[0..n) with every byte sequence that is not UTF-8 replaced by U+FFFD, NUL and the C0
 * controls but tab and line feed dropped, CRLF and lone CR made LF. Never NULL (sb_free).
 */
char *sb__email_utf8_clean(const char *s, size_t n);
/** The longest prefix of UTF-8 s[0..n) that is at most max bytes and ends on a character. */
size_t sb__email_utf8_cut(const char *s, size_t n, size_t max);
/**
 * s[0..n) in charset (a MIME label, NULL or "" when none) as clean UTF-8 (as
 * sb__email_utf8_clean). Labels are read as browsers read them: Latin-1, ASCII and no
 * label mean Windows-1252, Shift_JIS means CP932, GB2312 and GBK mean GB18030, EUC-KR and
 * ks_c_5601-1987 mean CP949. Bytes that are valid UTF-8 stay UTF-8 under no label, an
 * unknown one or a single-byte one (web forms label their UTF-8 as Latin-1; multi-byte
 * UTF-8 is all but impossible in real single-byte text); bytes that are not UTF-8 under
 * a label no converter knows are read as Windows-1252. Never NULL (sb_free).
 */
char *sb__email_to_utf8(const char *charset, const char *s, size_t n);
/**
 * A header value s[0..n) with its RFC 2047 encoded words decoded (words.c): adjacent words
 * of one charset are joined before conversion (a character split between two words
 * survives), white space between encoded words dropped, other text UTF-8 when it is,
 * else Windows-1252. Not cut, not unfolded; never NULL (sb_free).
 */
char *sb__email_decode_words(const char *s, size_t n);
/**
 * A header-like value s[0..n) as one clean line: made UTF-8 (as sb__email_utf8_clean), runs
 * of white space and line breaks collapsed to one space, trimmed, cut to max bytes on a
 * character. Never NULL (sb_free).
 */
char *sb__email_header_value(const char *s, size_t n, size_t max);
/**
 * HTML (UTF-8) to readable text: block elements become line breaks, list items "- ",
 * links "label (url)", entities decoded, scripts, styles and the head dropped, runs of
 * spaces and of blank lines collapsed. Never NULL (sb_free).
 */
char *sb__email_html_to_text(const char *s, size_t n);
/**
 * A format=flowed text/plain body (RFC 3676), UTF-8 with LF line ends, unwrapped: a line
 * ending in a space (soft break) joins the next line of the same quote depth, the space
 * stuffed before a leading space, '>' or "From" is removed, quoted lines are written as
 * depth '>' and one space, and "-- " stays a line of its own. delsp (DelSp=yes) drops the
 * space of each soft break. Never NULL (sb_free).
 */
char *sb__email_unflow(const char *s, size_t n, bool delsp);
/**
 * Splits a reply's text into what is new (*fresh) and the quoted history and signature
 * (*quoted): `>` lines, an "On … wrote:" attribution and what follows, Outlook's
 * "From: … Sent: …" block (and its "-----Original Message-----" form) and what follows,
 * and a "-- " signature. Both are new strings (sb_free), trimmed of blank edges.
 */
void sb__email_split_quoted(const char *text, char **fresh, char **quoted);

/* ---- raw.c: the raw bytes around libetpan ---- */

/** How many "multipart" or "message/" s[0..n) holds, in any case (bounds libetpan's depth). */
size_t sb__email_nesting_words(const char *s, size_t n);
/**
 * A copy of raw[0..n) without the header-block lines that are no field (*out_n bytes,
 * sb_free), or NULL when every line is one.
 */
char *sb__email_repair_headers(const char *raw, size_t n, size_t *out_n);
/**
 * The boundary of a multipart body that names none: from its first line "--<boundary>"
 * (at most 70 characters, no quote). Sets *b into s and returns its length, 0 when none.
 */
size_t sb__email_guess_boundary(const char *s, size_t n, const char **b);

/* ---- dsn.c: delivery status notifications ---- */

/**
 * Reads a message/delivery-status body s[0..n) (RFC 3464) into m's bounce_recipient,
 * bounce_action, bounce_status and bounce_diagnostic (all "" before, owned by m): the
 * first recipient whose Action is failed, else the first recipient. A second report in
 * the same message changes nothing.
 */
void sb__email_dsn_status(sb_mime_msg_t *m, const char *s, size_t n);
/**
 * The Message-ID (without brackets, clean UTF-8, at most SB_MIME_MAX_MSGID bytes) in the
 * header block s[0..n) (a text/rfc822-headers part), a new string (sb_free) or NULL.
 */
char *sb__email_headers_msgid(const char *s, size_t n);

/** s[0..n) %-decoded (URL user names and passwords); NULL if a %XX is broken or decodes to
 * NUL. sb_free. */
char *sb__email_pct_decode(const char *s, size_t n);

#endif
