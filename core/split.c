/* SPDX-License-Identifier: MIT */
/*
 * Length rules of social networks and the thread a long answer becomes (core/split.h).
 * Characters are extended grapheme clusters (UAX #29) as libunistring's
 * u8_grapheme_breaks finds them over the whole text, so a cluster's context (a flag's
 * pair of regional indicators, an emoji ZWJ sequence, combining marks) is always seen.
 * URLs ("http://" or "https://" up to whitespace) and mentions ("@user", "@user@host")
 * are spans that weigh by the rules and that a cut avoids.
 *
 * Cutting is greedy: each part takes the most text whose weight, with the prefix and the
 * widest counter the thread could need, still fits (a binary search over the cut points,
 * every candidate weighed as the whole post it would become), then steps back to the
 * latest paragraph break, else line break, else sentence end, else word gap within it.
 */
#include "core/split.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <unigbrk.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

#define SPLIT_MAX_PARTS_DEFAULT 10

/* ---- Spans: URLs and mentions ---- */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of the URL starting at s[i] (0 if none): the scheme and at least one more byte,
 * up to whitespace, not glued to a word before it. */
static size_t url_at(const char *s, size_t n, size_t i)
{
    if (i > 0 && is_word((unsigned char)s[i - 1]))
        return 0;
    size_t k;
    if (n - i > 7 && strncasecmp(s + i, "http://", 7) == 0)
        k = 7;
    else if (n - i > 8 && strncasecmp(s + i, "https://", 8) == 0)
        k = 8;
    else
        return 0;
    size_t e = i + k;
    while (e < n && !is_ws((unsigned char)s[e]))
        e++;
    return e > i + k ? e - i : 0;
}

/* Length of the mention at s[i] (0 if none): "@user" or "@user@host" where user is word
 * characters with inner dots and dashes, host word characters, dots and dashes ending in
 * a word character; *user_len gets the length of "user". */
static size_t mention_at(const char *s, size_t n, size_t i, size_t *user_len)
{
    if (s[i] != '@' || (i > 0 && (is_word((unsigned char)s[i - 1]) || s[i - 1] == '/')))
        return 0;
    size_t e = i + 1, last = 0;
    while (e < n && (is_word((unsigned char)s[e]) || s[e] == '.' || s[e] == '-')) {
        if (is_word((unsigned char)s[e]))
            last = e + 1;
        e++;
    }
    if (last == 0)
        return 0;
    *user_len = last - i - 1;
    if (last < n && s[last] == '@') {
        size_t h = last + 1, hlast = 0;
        while (h < n && (is_word((unsigned char)s[h]) || s[h] == '.' || s[h] == '-')) {
            if (is_word((unsigned char)s[h]))
                hlast = h + 1;
            h++;
        }
        if (hlast > 0)
            return hlast - i;
    }
    return last - i;
}

/* The span (URL or mention) starting at byte i, its length and weight; 0 if none. */
static size_t span_at(const char *s, size_t n, size_t i, const char *gb, const sb_split_rules_t *r,
                      size_t *weight)
{
    size_t len = url_at(s, n, i), user = 0;
    bool url = len > 0;
    if (!url)
        len = mention_at(s, n, i, &user);
    if (len == 0)
        return 0;
    /* A span ends at a cluster boundary (a combining mark after a host belongs to it). */
    while (i + len < n && !gb[i + len])
        len++;
    size_t clusters = 0;
    for (size_t k = i; k < i + len; k++)
        clusters += gb[k] ? 1 : 0;
    if (url && r->url_weight > 0)
        *weight = r->url_weight;
    else if (!url && r->mention_local && user + 1 < len)
        *weight = 1 + user; /* "@user@host" as "@user"; user is ASCII */
    else
        *weight = clusters;
    return len;
}

/* ---- Weighing ---- */

static void breaks(const char *s, size_t n, char *gb)
{
    if (n == 0)
        return;
    u8_grapheme_breaks((const uint8_t *)s, n, gb);
    gb[0] = 1;
}

size_t sb_split_graphemes(const char *text, size_t n)
{
    if (n == 0)
        return 0;
    char *gb = sb_malloc(n);
    breaks(text, n, gb);
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += gb[i] ? 1 : 0;
    sb_free(gb);
    return c;
}

static size_t weigh_with(const char *s, size_t n, const char *gb, const sb_split_rules_t *r)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t sw = 0, len = gb[i] ? span_at(s, n, i, gb, r, &sw) : 0;
        if (len > 0) {
            w += sw;
            i += len;
            continue;
        }
        w += gb[i] ? 1 : 0;
        i++;
    }
    return w;
}

size_t sb_split_weight(const char *text, size_t n, const sb_split_rules_t *r)
{
    if (n == 0)
        return 0;
    char *gb = sb_malloc(n);
    breaks(text, n, gb);
    size_t w = weigh_with(text, n, gb, r);
    sb_free(gb);
    return w;
}

/* ---- Cutting ---- */

typedef struct splitter {
    const char *s;
    size_t n;
    char *gb;     /* cluster breaks of the whole text */
    size_t *cuts; /* byte offsets a part may end at, ascending, n last */
    size_t ncuts;
    const sb_split_rules_t *r;
    const char *counter; /* the widest counter weighed with each part ("" if none) */
    sb_buf_t post;       /* scratch: prefix + content + counter */
} splitter_t;

/* The weight of text[a, b) as a whole post: prefix, content, counter. */
static size_t post_weight(splitter_t *sp, size_t a, size_t b)
{
    sb_buf_reset(&sp->post);
    if (sp->r->prefix)
        sb_buf_puts(&sp->post, sp->r->prefix);
    sb_buf_append(&sp->post, sp->s + a, b - a);
    sb_buf_puts(&sp->post, sp->counter);
    return sb_split_weight(sp->post.data, sp->post.len, sp->r);
}

/* True if the cluster starting at i (a break) is blanks only; *end gets its end. */
static bool blank_cluster(const splitter_t *sp, size_t i, size_t *end)
{
    size_t e = i + 1;
    while (e < sp->n && !sp->gb[e])
        e++;
    for (size_t k = i; k < e; k++)
        if (!is_ws((unsigned char)sp->s[k]))
            return false;
    *end = e;
    return true;
}

static size_t skip_blanks(const splitter_t *sp, size_t i)
{
    size_t e;
    while (i < sp->n && blank_cluster(sp, i, &e))
        i = e;
    return i;
}

/* The end of text[a, b) without the blank clusters it ends with. */
static size_t trim_end(const splitter_t *sp, size_t a, size_t b)
{
    while (b > a) {
        size_t c = b - 1, e;
        while (c > a && !sp->gb[c])
            c--;
        if (!blank_cluster(sp, c, &e) || e != b)
            break;
        b = c;
    }
    return b;
}

/* The cut points: cluster breaks outside spans, and inside a span that alone (with the
 * prefix and counter) would not fit. */
static void find_cuts(splitter_t *sp)
{
    sp->ncuts = 0;
    for (size_t i = 0; i < sp->n;) {
        size_t sw = 0, len = sp->gb[i] ? span_at(sp->s, sp->n, i, sp->gb, sp->r, &sw) : 0;
        if (len > 0 && post_weight(sp, i, i + len) <= sp->r->limit) {
            if (i > 0)
                sp->cuts[sp->ncuts++] = i;
            i += len;
            continue;
        }
        if (sp->gb[i] && i > 0)
            sp->cuts[sp->ncuts++] = i;
        i++;
    }
    sp->cuts[sp->ncuts++] = sp->n;
}

/* How good a cut at a blank run starting at p is: 4 paragraph, 3 line, 2 sentence,
 * 1 word. */
static int cut_rank(const splitter_t *sp, size_t p)
{
    size_t nl = 0;
    for (size_t k = p; k < sp->n && is_ws((unsigned char)sp->s[k]); k++)
        nl += sp->s[k] == '\n' ? 1 : 0;
    if (nl >= 2)
        return 4;
    if (nl == 1)
        return 3;
    size_t q = p;
    while (q > 0 && strchr(")]\"'", sp->s[q - 1]) && sp->s[q - 1] != '\0')
        q--;
    if (q > 0 && strchr(".!?", sp->s[q - 1]) && sp->s[q - 1] != '\0')
        return 2;
    if (q >= 3 && memcmp(sp->s + q - 3, "\xE2\x80\xA6", 3) == 0) /* … */
        return 2;
    return 1;
}

/* The end of the part starting at a (not blank): the best cut within what fits; 0 if not
 * even one cluster fits. */
static size_t part_end(splitter_t *sp, size_t a)
{
    /* First cut index after a. */
    size_t lo = 0, hi = sp->ncuts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->cuts[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first = lo;
    /* Each cluster or span weighs at least 1: at most limit of them fit. */
    size_t last = first + sp->r->limit < sp->ncuts ? first + sp->r->limit : sp->ncuts - 1;
    if (first >= sp->ncuts || post_weight(sp, a, trim_end(sp, a, sp->cuts[first])) > sp->r->limit)
        return 0;
    lo = first;
    hi = last;
    while (lo < hi) { /* the last cut index that fits */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (post_weight(sp, a, trim_end(sp, a, sp->cuts[mid])) <= sp->r->limit)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t fit = sp->cuts[lo];
    if (fit == sp->n)
        return fit;
    /* The best blank run starting within (a, fit], the latest of its rank. */
    size_t best = 0;
    int best_rank = 0;
    for (size_t p = a + 1; p <= fit && p < sp->n; p++) {
        if (!is_ws((unsigned char)sp->s[p]) || is_ws((unsigned char)sp->s[p - 1]) || !sp->gb[p])
            continue;
        int rank = cut_rank(sp, p);
        if (rank >= best_rank && post_weight(sp, a, p) <= sp->r->limit) {
            best = p;
            best_rank = rank;
        }
    }
    return best > 0 ? best : fit;
}

/* Cuts the whole text with sp->counter reserved; stores the parts' bounds when out is
 * not NULL (room for max entries). Returns the number of parts, 0 if one cluster cannot
 * fit. */
static size_t cut_all(splitter_t *sp, size_t (*out)[2], size_t max)
{
    find_cuts(sp);
    size_t k = 0;
    for (size_t a = skip_blanks(sp, 0); a < sp->n; a = skip_blanks(sp, a)) {
        size_t e = part_end(sp, a);
        if (e == 0)
            return 0;
        if (out && k < max) {
            out[k][0] = a;
            out[k][1] = trim_end(sp, a, e);
        }
        k++;
        a = e;
    }
    return k;
}

static unsigned digits(size_t v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static char *make_part(const splitter_t *sp, size_t a, size_t b, size_t i, size_t n)
{
    sb_buf_t p;
    sb_buf_init(&p, SIZE_MAX / 2);
    if (sp->r->prefix)
        sb_buf_puts(&p, sp->r->prefix);
    sb_buf_append(&p, sp->s + a, b - a);
    if (n > 1 && sp->r->number)
        sb_buf_printf(&p, " (%zu/%zu)", i + 1, n);
    return sb_buf_steal(&p, NULL);
}

int sb_split(const char *text, const sb_split_rules_t *r, char ***parts, size_t *nparts)
{
    *parts = NULL;
    *nparts = 0;
    size_t n = strlen(text);
    const char *prefix = r->prefix ? r->prefix : "";
    if (!sb_utf8_valid(text, n) || !sb_utf8_valid(prefix, strlen(prefix)) || r->limit == 0)
        return SB_EINVAL;
    splitter_t sp = {.s = text, .n = n, .r = r, .counter = ""};
    sb_buf_init(&sp.post, SIZE_MAX / 2);
    int rc = SB_EINVAL;
    size_t(*bounds)[2] = NULL;
    sp.gb = sb_malloc(n + 1);
    sp.cuts = sb_malloc((n + 1) * sizeof(*sp.cuts));
    breaks(text, n, sp.gb);
    size_t a = skip_blanks(&sp, 0);
    if (a == n)
        goto out; /* empty or blank */
    size_t e = trim_end(&sp, a, n);
    if (post_weight(&sp, a, e) <= r->limit) {
        *parts = sb_malloc(sizeof(char *));
        (*parts)[0] = make_part(&sp, a, e, 0, 1);
        *nparts = 1;
        rc = 0;
        goto out;
    }
    /* Reserve the widest counter of a thread of 10^d - 1 parts, widen while short. */
    char counter[64] = "";
    size_t k = 0;
    for (unsigned d = 1; d < 20; d++) {
        if (r->number) {
            memcpy(counter, " (", 2);
            memset(counter + 2, '9', d);
            counter[2 + d] = '/';
            memset(counter + 3 + d, '9', d);
            memcpy(counter + 3 + 2 * d, ")", 2);
        }
        sp.counter = counter;
        k = cut_all(&sp, NULL, 0);
        if (k == 0 || !r->number || digits(k) <= d)
            break;
    }
    if (k == 0)
        goto out; /* the prefix and counter leave no room */
    unsigned max = r->max_parts ? r->max_parts : SPLIT_MAX_PARTS_DEFAULT;
    if (k > max) {
        *nparts = k;
        rc = SB_ETOOBIG;
        goto out;
    }
    bounds = sb_malloc(k * sizeof(*bounds));
    cut_all(&sp, bounds, k);
    *parts = sb_malloc(k * sizeof(char *));
    for (size_t i = 0; i < k; i++)
        (*parts)[i] = make_part(&sp, bounds[i][0], bounds[i][1], i, k);
    *nparts = k;
    rc = 0;
out:
    sb_free(bounds);
    sb_free(sp.cuts);
    sb_free(sp.gb);
    sb_buf_dispose(&sp.post);
    return rc;
}

void sb_split_free(char **parts, size_t nparts)
{
    if (!parts)
        return;
    for (size_t i = 0; i < nparts; i++)
        sb_free(parts[i]);
    sb_free(parts);
}
