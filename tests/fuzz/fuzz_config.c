/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the configuration parser (core/config.c): the input is a whole configuration
 * file, handed to sb_config_load through a memfd (/proc/self/fd/N), so the file reader, the
 * line splitter (quotes, comments, CRLF, NUL, UTF-8, line and file caps), every key's
 * value checks (numbers, durations, listen addresses, URLs, webhooks) and the cross-key
 * checks all run as in `switchboard --check`. Keys a connector adds (config.h's
 * sb_config_key_t rows, of every kind, named like web chat's so the corpus reaches them)
 * go through the same parser. Invariants: a rejected file names at least one
 * `file:line: what` error; an accepted one has no error text and sane values, the added
 * keys' within their bounds.
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

static bool two_or_four(int argc, char *const *argv, char *why, size_t cap)
{
    if (argc == 2 || argc == 4)
        return true;
    snprintf(why, cap, "'%s': 2 or 4 words", argv[0]);
    return false;
}

static const sb_config_key_t added[] = {
    {"visitor_rate", SB_CONFIG_UINT, "120", 1, 1000000, "<per-minute>", "A count."},
    {"visitor_ip_rate", SB_CONFIG_SIZE, "600", 2, 1ULL << 30, "<size>", "A size."},
    {"site", SB_CONFIG_LIST, NULL, 2, 0, "<id> <secret> [origin...]", "A list."},
    {"mailbox", SB_CONFIG_LIST, NULL, 2, 0, "<a> <b> [<c> <d>]", "A checked list.", two_or_four},
    {"mastodon", SB_CONFIG_DURATION, "1s", 10, 3600000, "<duration>", "A duration."},
    {"bluesky", SB_CONFIG_BOOL, "off", 0, 1, "on|off", "A switch."},
    {"echo_path", SB_CONFIG_STRING, NULL, 1, 0, "<path>", "A string."},
    {NULL},
};

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
    const sb_config_key_t *const extra[] = {added, NULL};
    int rc = sb_config_load_with(&c, path, extra, &errors);
    if (rc == 0 && errors.len) {
        fprintf(stderr, "fuzz_config: accepted with errors: %.*s\n", (int)errors.len, errors.data);
        abort();
    }
    if (rc != 0 && (rc != SB_ECONFIG || errors.len == 0)) {
        fprintf(stderr, "fuzz_config: rejected without an error line (rc=%d)\n", rc);
        abort();
    }
    uint64_t rate = sb_config_uint(&c, "visitor_rate"), wait = sb_config_uint(&c, "mastodon");
    if (rc == 0 &&
        (c.shards < 1 || c.shards > 1024 || !c.listen || !c.data_dir || rate < 1 ||
         rate > 1000000 || wait < 10 || wait > 3600000 || sb_config_uint(&c, "bluesky") > 1)) {
        fprintf(stderr, "fuzz_config: accepted insane values\n");
        abort();
    }
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
    return 0;
}
