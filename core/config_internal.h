/* SPDX-License-Identifier: MIT */
/* Shared by config.c and config_value.c only. */
#ifndef SB_CONFIG_INTERNAL_H
#define SB_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/** The words of a line; v points into the line, and is owned (sb_free). */
typedef struct words {
    int n, cap;
    char **v;
} words_t;

/** Splits s (modified in place) into words. NULL, or why the line is malformed. */
const char *sb__config_split_words(char *s, words_t *w);

/** Checks of string values (the core table's check_fn): NULL if fine, else why not. */
const char *sb__config_check_listen(const char *v);
const char *sb__config_check_url(const char *v);
const char *sb__config_check_redis(const char *v);
const char *sb__config_check_prefix(const char *v);

/** Parses plain decimal digits. 0, SB_EINVAL (not a number) or SB_ETOOBIG (overflow). */
int sb__config_parse_u64(const char *s, uint64_t *out);
/** Writes ms in the largest unit that divides it exactly ("7d", "1500ms"). */
void sb__config_format_duration(int64_t ms, char *out, size_t n);

#endif
