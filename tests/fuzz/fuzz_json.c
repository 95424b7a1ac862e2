/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the input limits every JSON document from the network goes through (core/msg.c:
 * sb_json_parse's size, UTF-8, depth and syntax checks; sb_text_check; sb_utf8_valid).
 * The first byte picks the cap and whether an object is required. Invariants: an accepted
 * document is no deeper than SB_MAX_JSON_DEPTH, re-encodes and re-parses; a rejection fills
 * the error text; a text sb_text_check accepts (a C string: jansson never yields one with a
 * NUL inside) is valid UTF-8 within its cap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/msg.h"
#include "core/util.h"

static int depth_of(json_t *j)
{
    int d = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            int c = depth_of(v);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            int c = depth_of(v);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int want_object = data[0] & 1;
    size_t max = (data[0] & 2) ? 64 : SB_MAX_WS_FRAME;
    const char *buf = (const char *)data + 1;
    size_t n = size - 1;

    json_t *doc = NULL;
    sb_json_error_t err;
    memset(&err, 0x55, sizeof(err));
    int rc = sb_json_parse(buf, n, max, want_object, &doc, &err);
    if (rc == 0) {
        check(doc != NULL, "accepted without a document");
        check(n <= max, "accepted over the cap");
        check(sb_utf8_valid(buf, n), "accepted invalid UTF-8");
        check(depth_of(doc) <= SB_MAX_JSON_DEPTH, "accepted nesting over the limit");
        check(!want_object || json_is_object(doc), "accepted a non-object");
        char *again = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
        check(again != NULL, "cannot re-encode");
        json_t *doc2 = NULL;
        check(sb_json_parse(again, strlen(again), strlen(again), want_object, &doc2, &err) == 0,
              "re-encoded document rejected");
        check(json_equal(doc, doc2), "re-parsed document differs");
        json_decref(doc2);
        free(again);
        json_decref(doc);
    } else {
        check(doc == NULL, "rejected but returned a document");
        check(memchr(err.text, '\0', sizeof(err.text)) != NULL, "error text not terminated");
        check(rc == SB_ETOOBIG || rc == SB_EUTF8 || rc == SB_EDEPTH || rc == SB_EPARSE,
              "unexpected error code");
    }

    char *text = malloc(n + 1);
    memcpy(text, buf, n);
    text[n] = '\0';
    if (sb_text_check(text, SB_MAX_TEXT) == 0)
        check(sb_utf8_valid(text, strlen(text)) && strlen(text) <= SB_MAX_TEXT,
              "text check let through");
    free(text);
    return 0;
}
