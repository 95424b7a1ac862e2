/* SPDX-License-Identifier: MIT */
/*
 * Text from customers made safe to print on a terminal. Names and messages come from
 * anyone on the internet; printed raw, an escape sequence in them can clear the screen,
 * retitle the window, rewrite the clipboard (OSC 52) or forge transcript lines. sbctl
 * prints every such string through sb_term_escape.
 */
#ifndef SB_TERM_H
#define SB_TERM_H

#include <stddef.h>

#include "core/buf.h"

/** sb_term_escape flags. */
enum {
    /** Keep line breaks, each followed by `indent` spaces (so no line can pose as the start
     * of another entry); without it a line break is shown as the two characters \n. */
    SB_TERM_MULTILINE = 1,
};

/**
 * Appends the n bytes at s to out with every character that a terminal would act on made
 * visible instead: C0 controls, DEL and bytes that are not UTF-8 as \xNN (tab as \t),
 * C1 controls (U+0080..U+009F), bidirectional overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069) and the Unicode line/paragraph separators as \uNNNN. Everything else,
 * backslashes included, is copied as it is. Returns 0 or SB_ETOOBIG (out's cap).
 */
int sb_term_escape(sb_buf_t *out, const char *s, size_t n, int flags, int indent);

#endif
