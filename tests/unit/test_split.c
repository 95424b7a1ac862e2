/* SPDX-License-Identifier: MIT */
/*
 * Length rules and threads (core/split.c): user-perceived characters (emoji ZWJ
 * sequences, flags, combining marks count as one), Mastodon's URL and mention weights,
 * where a long answer is cut (paragraph, line, sentence, word, cluster; never inside a URL
 * or a cluster), the prefix and counter on every part, and the refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/split.h"
#include "core/util.h"

#define FAMILY     "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"
#define FLAG_FR    "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7"
#define FLAG_DE    "\xF0\x9F\x87\xA9\xF0\x9F\x87\xAA"
#define E_ACUTE    "e\xCC\x81" /* e + COMBINING ACUTE ACCENT */
#define THUMB_DARK "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"

static size_t G(const char *s)
{
    return sb_split_graphemes(s, strlen(s));
}

static size_t W(const char *s, const sb_split_rules_t *r)
{
    return sb_split_weight(s, strlen(s), r);
}

static void test_split_graphemes_count_clusters(void **state)
{
    (void)state;
    assert_int_equal(G("abc"), 3);
    assert_int_equal(G(FAMILY), 1);
    assert_int_equal(G(FLAG_FR), 1);
    assert_int_equal(G(FLAG_FR FLAG_DE), 2);
    assert_int_equal(G(E_ACUTE), 1);
    assert_int_equal(G("caf" E_ACUTE "!"), 5);
    assert_int_equal(G(THUMB_DARK), 1);
    assert_int_equal(G("\r\n"), 1);
    assert_int_equal(G(""), 0);
}

static void test_split_weight_mastodon_rules(void **state)
{
    (void)state;
    sb_split_rules_t m = {.limit = 500, .url_weight = 23, .mention_local = true};
    sb_split_rules_t plain = {.limit = 300};
    const char *url = "https://example.com/a/very/long/path/that/goes/on/and/on?q=1";
    assert_int_equal(W(url, &m), 23);
    assert_int_equal(W(url, &plain), strlen(url));
    assert_int_equal(W("see http://x.io now", &m), 4 + 23 + 4);
    assert_int_equal(W("@alice@example.social hi", &m), 6 + 3);
    assert_int_equal(W("@alice@example.social hi", &plain), 24);
    assert_int_equal(W("@alice hi", &m), 9);
    /* Not URLs or remote mentions: glued to a word, no host, no path. */
    assert_int_equal(W("xhttp://a.b", &m), 11);
    assert_int_equal(W("mail bob@example.com", &m), 20);
    assert_int_equal(W("http:// x", &m), 9);
    assert_int_equal(W(FAMILY " " FLAG_FR, &m), 3);
}

/* Splits with r, asserting success; every part valid UTF-8 and within the limit. */
static char **split_ok(const char *text, const sb_split_rules_t *r, size_t *n)
{
    char **parts = NULL;
    int rc = sb_split(text, r, &parts, n);
    assert_int_equal(rc, 0);
    assert_non_null(parts);
    for (size_t i = 0; i < *n; i++) {
        assert_true(sb_utf8_valid(parts[i], strlen(parts[i])));
        assert_true(W(parts[i], r) <= r->limit);
        if (r->prefix)
            assert_memory_equal(parts[i], r->prefix, strlen(r->prefix));
    }
    return parts;
}

static void test_split_fits_in_one_part(void **state)
{
    (void)state;
    sb_split_rules_t r = {.limit = 20, .prefix = "@bob ", .number = true};
    size_t n;
    char **p = split_ok("  hello there \n", &r, &n);
    assert_int_equal(n, 1);
    assert_string_equal(p[0], "@bob hello there"); /* no counter on a single post */
    sb_split_free(p, n);
}

static void expect_parts(const char *text, size_t limit, const char *const *want, size_t nwant)
{
    sb_split_rules_t r = {.limit = limit};
    size_t n;
    char **p = split_ok(text, &r, &n);
    for (size_t i = 0; i < n && i < nwant; i++)
        assert_string_equal(p[i], want[i]);
    assert_int_equal(n, nwant);
    sb_split_free(p, n);
}

static void test_split_cut_preference(void **state)
{
    (void)state;
    /* A paragraph break wins over a later line break, sentence end and word gap. */
    const char *para[] = {"One two. Three", "four\nfive six. seven eight"};
    expect_parts("One two. Three\n\nfour\nfive six. seven eight", 30, para, 2);
    /* A line break over a later sentence end. */
    const char *line[] = {"One two", "three. four five six"};
    expect_parts("One two\nthree. four five six", 25, line, 2);
    /* A sentence end over a later word gap ("!" and a closing quote count). */
    const char *sent[] = {"Yes \"really!\"", "more words here"};
    expect_parts("Yes \"really!\" more words here", 20, sent, 2);
    /* Between words, the latest gap. */
    const char *word[] = {"alpha beta", "gamma delta"};
    expect_parts("alpha beta gamma delta", 12, word, 2);
    /* No gap at all: between clusters, never inside one. */
    const char *cl[] = {"abcd", "efgh", "ij"};
    expect_parts("abcdefghij", 4, cl, 3);
    const char *emoji[] = {FAMILY FLAG_FR E_ACUTE, THUMB_DARK FAMILY FLAG_DE, E_ACUTE};
    expect_parts(FAMILY FLAG_FR E_ACUTE THUMB_DARK FAMILY FLAG_DE E_ACUTE, 3, emoji, 3);
}

static void test_split_url_never_cut(void **state)
{
    (void)state;
    const char *url = "https://example.com/some/long/path/to/a/page";
    char text[256];
    snprintf(text, sizeof(text), "Please read this page: %s and tell us", url);
    sb_split_rules_t r = {.limit = 30, .url_weight = 23};
    size_t n;
    char **p = split_ok(text, &r, &n);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found = found || strstr(p[i], url) != NULL;
    assert_true(found);
    sb_split_free(p, n);
    /* As written (no URL weight) it is over the cap alone: cut between clusters then. */
    sb_split_rules_t w = {.limit = 20};
    p = split_ok(url, &w, &n);
    assert_int_equal(n, 3);
    assert_string_equal(p[0], "https://example.com/");
    sb_split_free(p, n);
}

/* The words of s (blank-separated), after dropping the prefix and the counter. */
static size_t words_of(const char *s, char words[][64], size_t max)
{
    size_t k = 0;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *w = strtok(buf, " \n\t"); w && k < max; w = strtok(NULL, " \n\t"))
        snprintf(words[k++], 64, "%s", w);
    return k;
}

static void test_split_prefix_counter_and_rejoin(void **state)
{
    (void)state;
    const char *text = "Thanks for writing to us about the delivery. We looked into it and the "
                       "parcel left our warehouse on Monday.\n\nIt should reach you by Friday; "
                       "the tracking link is https://track.example.com/p/123456789 and you can "
                       "answer here if it does not arrive. " FAMILY " Have a good week!";
    sb_split_rules_t r = {.limit = 60,
                          .url_weight = 23,
                          .mention_local = true,
                          .prefix = "@alice@example.social ",
                          .number = true};
    size_t n;
    char **p = split_ok(text, &r, &n);
    assert_true(n > 2);
    char joined[4096] = "";
    for (size_t i = 0; i < n; i++) {
        char counter[32];
        snprintf(counter, sizeof(counter), " (%zu/%zu)", i + 1, n);
        size_t len = strlen(p[i]), cl = strlen(counter), pl = strlen(r.prefix);
        assert_true(len > cl + pl);
        assert_string_equal(p[i] + len - cl, counter);
        strncat(joined, p[i] + pl, len - cl - pl);
        strcat(joined, " ");
    }
    static char a[128][64], b[128][64];
    size_t na = words_of(text, a, 128), nb = words_of(joined, b, 128);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i], b[i]);
    sb_split_free(p, n);
}

static void test_split_too_many_parts(void **state)
{
    (void)state;
    char text[1200];
    memset(text, 'x', 1100);
    text[1100] = '\0';
    sb_split_rules_t r = {.limit = 100, .max_parts = 5};
    char **p = (char **)1;
    size_t n = 0;
    assert_int_equal(sb_split(text, &r, &p, &n), SB_ETOOBIG);
    assert_null(p);
    assert_int_equal(n, 11);
    r.max_parts = 0; /* default 10 */
    assert_int_equal(sb_split(text, &r, &p, &n), SB_ETOOBIG);
    assert_int_equal(n, 11);
    r.max_parts = 11;
    p = split_ok(text, &r, &n);
    assert_int_equal(n, 11);
    sb_split_free(p, n);
}

static void test_split_refusals(void **state)
{
    (void)state;
    sb_split_rules_t r = {.limit = 10};
    char **p = NULL;
    size_t n = 7;
    assert_int_equal(sb_split("bad \xC3\x28 utf8", &r, &p, &n), SB_EINVAL);
    assert_int_equal(sb_split("surrogate \xED\xA0\x80", &r, &p, &n), SB_EINVAL);
    assert_int_equal(sb_split("", &r, &p, &n), SB_EINVAL);
    assert_int_equal(sb_split(" \n ", &r, &p, &n), SB_EINVAL);
    assert_null(p);
    sb_split_rules_t full = {.limit = 8, .prefix = "@someone ", .number = true};
    assert_int_equal(sb_split("a long enough text", &full, &p, &n), SB_EINVAL);
    sb_split_rules_t counter = {.limit = 8, .number = true}; /* " (1/9)" leaves 2 */
    p = split_ok("abcdefghij", &counter, &n);
    assert_int_equal(n, 5);
    assert_string_equal(p[0], "ab (1/5)");
    sb_split_free(p, n);
    sb_split_free(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_graphemes_count_clusters),
        cmocka_unit_test(test_split_weight_mastodon_rules),
        cmocka_unit_test(test_split_fits_in_one_part),
        cmocka_unit_test(test_split_cut_preference),
        cmocka_unit_test(test_split_url_never_cut),
        cmocka_unit_test(test_split_prefix_counter_and_rejoin),
        cmocka_unit_test(test_split_too_many_parts),
        cmocka_unit_test(test_split_refusals),
    };
    return cmocka_run_group_tests_name("core/split", tests, NULL, NULL);
}
