/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the configuration parser (core/config.c): the input is a whole configuration
 * file, handed to sb_config_load through a memfd (/proc/self/fd/N), so the file reader, the
 * line splitter (quotes, comments, CRLF, NUL, UTF-8, line and file caps), every key's
 * value checks (numbers, durations, listen addresses, URLs, webhooks) and the cross-key
 * checks all run as in `switchboard --check`. Invariants: a rejected file names at least
 * one `file:line: what` error; an accepted one has no error text and sane values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_config", MFD_CLOEXEC);
        if (fd < 0) {
            perror("fuzz_config: memfd_create");
            abort();
        }
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        perror("fuzz_config: write");
        abort();
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 20);
    int rc = sb_config_load(&c, path, &errors);
    if (rc == 0 && errors.len) {
        fprintf(stderr, "fuzz_config: accepted with errors: %.*s\n", (int)errors.len, errors.data);
        abort();
    }
    if (rc != 0 && (rc != SB_ECONFIG || errors.len == 0)) {
        fprintf(stderr, "fuzz_config: rejected without an error line (rc=%d)\n", rc);
        abort();
    }
    if (rc == 0 && (c.shards < 1 || c.shards > 1024 || !c.listen || !c.data_dir)) {
        fprintf(stderr, "fuzz_config: accepted insane values\n");
        abort();
    }
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
    return 0;
}
