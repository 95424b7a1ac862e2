/* SPDX-License-Identifier: MIT */
/* connectors/mastodon/html.c: status HTML as the plain text staff read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "connectors/mastodon/html.h"
#include "core/alloc.h"
#include "core/util.h"

static void expect(const char *html, const char *want)
{
    static const sb_md_mention_t m[] = {
        {"https://mastodon.example/@support", "support@mastodon.example"},
        {"https://other.example/@bob", "bob@other.example"},
    };
    char *got = sb_md_html_text(html, strlen(html), m, 2, 0);
    assert_string_equal(got, want);
    sb_free(got);
}

static void test_html_paragraphs_and_breaks(void **state)
{
    (void)state;
    expect("<p>Hello</p><p>World</p>", "Hello\n\nWorld");
    expect("<p>one<br>two<br />three</p>", "one\ntwo\nthree");
    expect("<p>a<br><br><br>b</p>", "a\n\nb");
    expect("<p>  lots   of\n\tblanks  </p>", "lots of blanks");
    expect("", "");
}

static void test_html_entities(void **state)
{
    (void)state;
    expect("<p>fish &amp; chips &lt;3 &quot;yes&quot; it&#39;s &#x1F600; &#128512;</p>",
           "fish & chips <3 \"yes\" it's \xF0\x9F\x98\x80 \xF0\x9F\x98\x80");
    expect("<p>&bogus; &amp &#0; &#xD800; &#99999999;</p>",
           "&bogus; &amp \xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD");
}

static void test_html_mentions_tags_links(void **state)
{
    (void)state;
    expect("<p><span class=\"h-card\"><a href=\"https://mastodon.example/@support\" "
           "class=\"u-url mention\">@<span>support</span></a></span> hi "
           "<span class=\"h-card\"><a href=\"https://other.example/@bob\" class=\"u-url "
           "mention\">@<span>bob</span></a></span></p>",
           "@support@mastodon.example hi @bob@other.example");
    /* not in the status's mentions: the acct comes from the profile URL */
    expect("<p><a href=\"https://third.example/@carol\" class=\"u-url "
           "mention\">@<span>carol</span></a>"
           "</p>",
           "@carol@third.example");
    expect("<p><a href=\"https://mastodon.example/tags/help\" class=\"mention hashtag\" "
           "rel=\"tag\">#<span>help</span></a></p>",
           "#help");
    expect("<p>see <a href=\"https://example.com/a/very/long/path?x=1&amp;y=2\" rel=\"nofollow\">"
           "<span class=\"invisible\">https://</span><span class=\"ellipsis\">example.com/a/ve"
           "</span><span class=\"invisible\">ry/long/path</span></a> now</p>",
           "see https://example.com/a/very/long/path?x=1&y=2 now");
    expect("<p><a href=\"mailto:x@example.com\">write us</a></p>", "write us");
}

static void test_html_strips_the_rest(void **state)
{
    (void)state;
    expect("<p>a<script>alert(1)</script>b<style>p{}</style>c<!-- hidden -->d<b>e</b></p>",
           "abcde");
    expect("<p>x < y and z</p>", "x < y and z");
    expect("<p>cut <a href=\"https://ex", "cut");
    expect("<ul><li>one</li><li>two</li></ul>", "one\ntwo");
}

static void test_html_bounded_and_utf8(void **state)
{
    (void)state;
    char *got = sb_md_html_text("<p>\xC3\xA9\xFF\xE2\x82</p>", 12, NULL, 0, 0);
    assert_true(sb_utf8_valid(got, strlen(got)));
    assert_string_equal(got, "\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* a bad byte each */
    sb_free(got);
    got = sb_md_html_text("<p>\xC3\xA9\xC3\xA9\xC3\xA9</p>", 13, NULL, 0, 5);
    assert_string_equal(got, "\xC3\xA9\xC3\xA9"); /* never half a character */
    sb_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_paragraphs_and_breaks),
        cmocka_unit_test(test_html_entities),
        cmocka_unit_test(test_html_mentions_tags_links),
        cmocka_unit_test(test_html_strips_the_rest),
        cmocka_unit_test(test_html_bounded_and_utf8),
    };
    return cmocka_run_group_tests_name("connectors/mastodon_html", tests, NULL, NULL);
}
