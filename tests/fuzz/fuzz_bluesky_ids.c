/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the identifier helpers of connectors/bluesky/ids.c with what a PDS sends: at-uris
 * (sb__bs_aturi_parse), the bsky.app address made from a handle and a post's uri
 * (sb__bs_web_url) and record keys (sb__bs_tid_valid). The input is split at its first
 * newline into a handle and a uri. Invariants: nothing crashes or leaks; a parsed at-uri's
 * three parts are non-empty, inside the input, free of '/', and rebuild it exactly; a web
 * address exists only for an app.bsky.feed.post uri and ends with its record key; a TID
 * made from the input as a message id is valid, 13 characters, and the same when made again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_bluesky_ids: %s\n", what);
    abort();
}

static void check_uri(const char *uri)
{
    bs_aturi_t u;
    if (!sb__bs_aturi_parse(uri, &u))
        return;
    size_t n = strlen(uri);
    if (!u.authority_len || !u.collection_len || !u.rkey_len)
        fail("an empty part");
    if (memchr(u.authority, '/', u.authority_len) || memchr(u.collection, '/', u.collection_len) ||
        memchr(u.rkey, '/', u.rkey_len))
        fail("a part holds '/'");
    if (5 + u.authority_len + 1 + u.collection_len + 1 + u.rkey_len != n)
        fail("the parts do not rebuild the uri");
    if (u.authority != uri + 5 || u.rkey + u.rkey_len != uri + n)
        fail("a part outside the uri");
}

static void check_web(const char *handle, const char *uri)
{
    char *url = sb__bs_web_url(handle, uri);
    if (!url)
        return;
    bs_aturi_t u;
    if (!sb__bs_aturi_parse(uri, &u) || u.collection_len != 18 ||
        memcmp(u.collection, "app.bsky.feed.post", 18) != 0)
        fail("an address for something that is not a post");
    size_t n = strlen(url);
    if (n < u.rkey_len || memcmp(url + n - u.rkey_len, u.rkey, u.rkey_len) != 0)
        fail("the address does not end with the record key");
    if (strncmp(url, "https://bsky.app/profile/", 25) != 0)
        fail("not a bsky.app address");
    sb_free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = sb_strndup((const char *)data, size);
    char *nl = strchr(in, '\n');
    const char *handle = "", *uri = in;
    if (nl) {
        *nl = '\0';
        handle = in;
        uri = nl + 1;
    }
    check_uri(uri);
    check_web(handle, uri);
    (void)sb__bs_tid_valid(uri);
    char a[BS_TID_LEN + 1], b[BS_TID_LEN + 1];
    int64_t ts = size >= 8 ? (int64_t)(((uint64_t)data[0] << 40) | ((uint64_t)data[1] << 32) |
                                       ((uint64_t)data[2] << 24) | ((uint64_t)data[3] << 16))
                           : (int64_t)size;
    sb__bs_tid(uri, ts, (unsigned)size, a);
    sb__bs_tid(uri, ts, (unsigned)size, b);
    if (strcmp(a, b) != 0)
        fail("a TID that changes");
    if (strlen(a) != BS_TID_LEN || !sb__bs_tid_valid(a))
        fail("an invalid TID");
    sb_free(in);
    return 0;
}
