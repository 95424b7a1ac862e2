/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes connectors/email/rcpt.c (the recipients of a raw message's header, through
 * libetpan). Invariants: at most SB_RCPT_MAX addresses, each non-empty, lower case, no
 * longer than SB_MAX_EMAIL and none twice.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/rcpt.h"
#include "core/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_rcpt_t r;
    sb_rcpt_parse((const char *)data, size, &r);
    if (r.n > SB_RCPT_MAX)
        abort();
    for (size_t i = 0; i < r.n; i++) {
        size_t n = strlen(r.addr[i]);
        if (n == 0 || n > SB_MAX_EMAIL)
            abort();
        for (size_t k = 0; k < n; k++)
            if (isupper((unsigned char)r.addr[i][k]))
                abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(r.addr[i], r.addr[j]) == 0)
                abort();
    }
    sb_rcpt_free(&r);
    return 0;
}
