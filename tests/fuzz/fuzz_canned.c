/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the checks a canned reply passes before it is stored (core/store_canned.c,
 * sb_canned_shortcut_valid and sb_canned_check). The input is shortcut NUL title NUL text.
 * Invariants: a shortcut is valid exactly when it is 1..32 bytes of [a-z0-9_-]; an
 * accepted reply has a valid shortcut, a title of at most 200 bytes without control
 * characters and a valid UTF-8 text of at most 8 KiB; a refusal says why.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "core/store.h"
#include "core/util.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_canned: %s\n", what);
    abort();
}

static bool shortcut_model(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", s[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *shortcut = buf;
    const char *title = shortcut + strlen(shortcut) + 1;
    if (title > buf + size)
        title = buf + size + 1;
    const char *text = title + strlen(title) + 1;
    if (text > buf + size + 1)
        text = buf + size + 2;

    bool valid = sb_canned_shortcut_valid(shortcut);
    if (valid != shortcut_model(shortcut))
        fail("shortcut check disagrees with the model");
    const char *why = NULL;
    int rc = sb_canned_check(shortcut, title, text, &why);
    if (rc == 0) {
        if (!valid)
            fail("accepted a bad shortcut");
        if (strlen(title) > SB_CANNED_TITLE_MAX || sb_line_check(title, SB_CANNED_TITLE_MAX))
            fail("accepted a bad title");
        if (strlen(text) > SB_MAX_TEXT || !sb_utf8_valid(text, strlen(text)))
            fail("accepted a bad text");
    } else if (!why || !*why) {
        fail("a refusal without a reason");
    }
    free(buf);
    return 0;
}
