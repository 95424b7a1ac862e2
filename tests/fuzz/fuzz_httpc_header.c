/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the response-header lookup of the HTTP client (core/httpc.c, sb_httpc_header):
 * a provider's answer headers (Retry-After, X-RateLimit-Reset…) are untrusted input.
 * Input: the header name to look up, a NUL byte, then the raw "Name: value\r\n" block.
 * Invariants: a found value fits the buffer, is NUL-terminated, holds no CR or LF, has no
 * blank at either end, and appears verbatim in the block after "<name>:".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul || nul == data || size > 64 * 1024)
        return 0;
    char *name = strndup((const char *)data, (size_t)(nul - data));
    size_t blen = size - (size_t)(nul - data) - 1;
    char *block = malloc(blen + 1);
    memcpy(block, nul + 1, blen);
    block[blen] = '\0';
    sb_httpc_response_t res = {.headers = block, .body = "", .error = ""};
    char out[32];
    const char *v = sb_httpc_header(&res, name, out, sizeof(out));
    if (v) {
        size_t n = strlen(v);
        if (v != out || n >= sizeof(out) || strpbrk(v, "\r\n"))
            abort();
        if (n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
            abort();
        bool seen = false;
        size_t nl = strlen(name);
        for (const char *p = block; p && *p && !seen; p = strchr(p, '\n'), p = p ? p + 1 : p)
            if (strncasecmp(p, name, nl) == 0 && p[nl] == ':' && strstr(p + nl + 1, v))
                seen = true;
        if (!seen)
            abort();
    }
    free(name);
    free(block);
    return 0;
}
