/* SPDX-License-Identifier: MIT */
/*
 * Mastodon status HTML → plain text (html.h says what becomes what). One pass over the
 * bytes with a small state: the newlines and the blank owed before the next character,
 * whether the text of the current tag is dropped (a link shown by its href, a mention
 * shown by its acct, script and style). The input is untrusted and may be cut anywhere:
 * an unfinished tag or entity ends the text or is taken literally, never read past n.
 */
#include "connectors/mastodon/html.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/alloc.h"

#define ATTR_MAX   2048 /* an href or class kept up to this (longer: cut) */
#define ENTITY_MAX 12   /* "&#x10FFFF;" and the longest named one fit */

typedef struct cv {
    char *p;
    size_t len, max;
    int nl;     /* newlines owed before the next character (at most 2) */
    bool space; /* a blank owed before the next character */
    bool mute;  /* inside a link or mention already written: its text is dropped */
    int skip;   /* inside script (1) or style (2): everything dropped to its end tag */
} cv_t;

typedef struct tag {
    char name[16];
    bool end;
    char href[ATTR_MAX], cls[ATTR_MAX];
} tag_t;

/* Appends n bytes when they fit whole (a character is never cut). */
static void put(cv_t *c, const char *s, size_t n)
{
    if (c->len + n > c->max)
        c->max = c->len; /* full: nothing more goes in */
    else {
        memcpy(c->p + c->len, s, n);
        c->len += n;
    }
}

/* Writes what is owed before a character: the newlines, else the blank. */
static void flush(cv_t *c)
{
    if (c->len > 0 && c->nl > 0)
        put(c, "\n\n", (size_t)c->nl);
    else if (c->len > 0 && c->space && c->p[c->len - 1] != '\n')
        put(c, " ", 1);
    c->nl = 0;
    c->space = false;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one UTF-8 character at s (n > 0 bytes left); *len its bytes; U+FFFD if bad. */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char b = s[0];
    size_t need = b < 0x80                 ? 0
                  : b >= 0xC2 && b <= 0xDF ? 1
                  : (b & 0xF0) == 0xE0     ? 2
                  : b >= 0xF0 && b <= 0xF4 ? 3
                                           : 9;
    *len = 1;
    if (need == 0)
        return b;
    if (need == 9 || need >= n)
        return 0xFFFD;
    uint32_t cp = b & (0x3F >> need);
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0xFFFD;
    *len = need + 1;
    return cp;
}

static void put_cp(cv_t *c, uint32_t cp)
{
    char u[4];
    size_t k = utf8_encode(cp, u);
    if (c->mute || c->skip)
        return;
    flush(c);
    put(c, u, k);
}

/* An entity at s ('&' first, n bytes left): its code point, *len the bytes it takes; 0
 * when it is not one (the '&' is then taken as it is). */
static uint32_t entity(const char *s, size_t n, size_t *len)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"amp", '&'},       {"lt", '<'},       {"gt", '>'},
                 {"quot", '"'},      {"apos", '\''},    {"nbsp", ' '},
                 {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013}};
    size_t e = 1;
    while (e < n && e <= ENTITY_MAX && s[e] != ';')
        e++;
    if (e >= n || s[e] != ';' || e == 1)
        return 0;
    *len = e + 1;
    if (s[1] == '#') {
        uint32_t cp;
        if (!sb_html_charref(s + 1, e - 1, &cp))
            return 0;
        return cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0xFFFD : cp;
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
        if (strlen(named[k].name) == e - 1 && memcmp(named[k].name, s + 1, e - 1) == 0)
            return named[k].cp;
    return 0;
}

/* Copies an attribute value, entities decoded, into out (ATTR_MAX, cut on overflow). */
static void attr_copy(const char *v, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        uint32_t cp = v[i] == '&' ? entity(v + i, n - i, &k) : 0;
        char u[4];
        size_t ul = cp ? utf8_encode(cp, u) : 1;
        if (!cp)
            u[0] = v[i];
        if (o + ul >= ATTR_MAX)
            break;
        memcpy(out + o, u, ul);
        o += ul;
        i += cp ? k : 1;
    }
    out[o] = '\0';
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* Parses a tag at s ('<' first); the bytes it takes, or 0 when it is not finished. */
static size_t parse_tag(const char *s, size_t n, tag_t *t)
{
    size_t i = 1, k = 0;
    t->end = i < n && s[i] == '/';
    i += t->end;
    t->name[0] = t->href[0] = t->cls[0] = '\0';
    for (; i < n && (s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z'; i++)
        if (k + 1 < sizeof(t->name))
            t->name[k++] = (char)(s[i] | 0x20);
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) /* h1..h6 */
        if (k + 1 < sizeof(t->name))
            t->name[k++] = s[i];
    t->name[k] = '\0';
    while (i < n && s[i] != '>') {
        if (is_blank(s[i]) || s[i] == '/') {
            i++;
            continue;
        }
        size_t a = i;
        while (i < n && !is_blank(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/')
            i++;
        size_t alen = i - a;
        if (i >= n || s[i] != '=')
            continue;
        i++;
        size_t v = i, vlen;
        if (i < n && (s[i] == '"' || s[i] == '\'')) {
            char q = s[i++];
            v = i;
            while (i < n && s[i] != q)
                i++;
            if (i >= n)
                return 0;
            vlen = i++ - v;
        } else {
            while (i < n && !is_blank(s[i]) && s[i] != '>')
                i++;
            vlen = i - v;
        }
        if (alen == 4 && strncasecmp(s + a, "href", 4) == 0)
            attr_copy(s + v, vlen, t->href);
        else if (alen == 5 && strncasecmp(s + a, "class", 5) == 0)
            attr_copy(s + v, vlen, t->cls);
    }
    return i < n ? i + 1 : 0;
}

/* Whether the class list cls holds the word w. */
static bool has_class(const char *cls, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = cls; (p = strstr(p, w)); p += wl)
        if ((p == cls || is_blank(p[-1])) && (p[wl] == '\0' || is_blank(p[wl])))
            return true;
    return false;
}

static bool http_url(const char *u)
{
    return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

static void put_str(cv_t *c, const char *s)
{
    for (size_t i = 0, n = strlen(s); i < n;) {
        size_t k;
        put_cp(c, utf8_decode((const unsigned char *)s + i, n - i, &k));
        i += k;
    }
}

/* "@user@host" from a profile URL "https://host/@user" (or /users/user); false if none. */
static bool acct_of_url(const char *href, char *out, size_t cap)
{
    const char *h = strstr(href, "://");
    if (!h)
        return false;
    h += 3;
    const char *slash = strchr(h, '/');
    if (!slash || slash == h)
        return false;
    const char *user = slash[1] == '@'                     ? slash + 2
                       : strncmp(slash, "/users/", 7) == 0 ? slash + 7
                                                           : NULL;
    if (!user || !*user || strpbrk(user, "/?#@"))
        return false;
    int w = snprintf(out, cap, "@%s@%.*s", user, (int)(slash - h), h);
    return w > 0 && (size_t)w < cap;
}

/* An <a>: a mention written as its acct, a link as its href (their text then dropped). */
static void open_link(cv_t *c, const tag_t *t, const sb_md_mention_t *m, size_t nm)
{
    char acct[ATTR_MAX + 2];
    if (has_class(t->cls, "mention") && !has_class(t->cls, "hashtag")) {
        for (size_t i = 0; i < nm; i++)
            if (m[i].url && m[i].acct && strcmp(m[i].url, t->href) == 0) {
                snprintf(acct, sizeof(acct), "@%s", m[i].acct);
                put_str(c, acct);
                c->mute = true;
                return;
            }
        if (acct_of_url(t->href, acct, sizeof(acct))) {
            put_str(c, acct);
            c->mute = true;
        }
        return; /* unknown: its text ("@user") stays */
    }
    if (!has_class(t->cls, "hashtag") && http_url(t->href)) {
        put_str(c, t->href);
        c->mute = true;
    }
}

static void on_tag(cv_t *c, const tag_t *t, const sb_md_mention_t *m, size_t nm)
{
    const char *nm_ = t->name;
    if (c->skip) {
        if (t->end && strcmp(nm_, c->skip == 1 ? "script" : "style") == 0)
            c->skip = 0;
        return;
    }
    if (!t->end && (strcmp(nm_, "script") == 0 || strcmp(nm_, "style") == 0)) {
        c->skip = nm_[1] == 'c' ? 1 : 2;
        return;
    }
    if (strcmp(nm_, "a") == 0) {
        c->mute = false;
        if (!t->end)
            open_link(c, t, m, nm);
        return;
    }
    static const char *const blocks[] = {"p",  "div", "blockquote", "ul", "ol", "pre",
                                         "h1", "h2",  "h3",         "h4", "h5", "h6"};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
        if (strcmp(nm_, blocks[i]) == 0) {
            c->nl = 2;
            return;
        }
    if (strcmp(nm_, "br") == 0 && c->nl < 2)
        c->nl++;
    else if (strcmp(nm_, "li") == 0 && !t->end && c->nl < 1)
        c->nl = 1;
}

/* A comment or declaration at s ("<!" first): the bytes it takes (all when unfinished). */
static size_t skip_decl(const char *s, size_t n)
{
    if (n >= 4 && memcmp(s, "<!--", 4) == 0) {
        for (size_t i = 4; i + 2 < n; i++)
            if (memcmp(s + i, "-->", 3) == 0)
                return i + 3;
        return n;
    }
    const char *e = memchr(s, '>', n);
    return e ? (size_t)(e - s) + 1 : n;
}

char *sb_md_html_text(const char *html, size_t n, const sb_md_mention_t *mentions, size_t nm,
                      size_t max_out)
{
    cv_t c = {.max = max_out ? max_out : SB_MD_TEXT_MAX};
    c.p = sb_malloc(c.max + 1);
    tag_t *t = sb_malloc(sizeof(*t));
    for (size_t i = 0; i < n && c.len < c.max;) {
        char ch = html[i];
        size_t k = 1;
        if (ch == '<' && i + 1 < n && html[i + 1] == '!') {
            k = skip_decl(html + i, n - i);
        } else if (ch == '<' && i + 1 < n &&
                   (html[i + 1] == '/' ||
                    ((html[i + 1] | 0x20) >= 'a' && (html[i + 1] | 0x20) <= 'z'))) {
            k = parse_tag(html + i, n - i, t);
            if (k == 0)
                break; /* an unfinished tag ends the text */
            on_tag(&c, t, mentions, nm);
        } else if (is_blank(ch)) {
            c.space = c.space || (!c.mute && !c.skip);
        } else if (ch == '&') {
            uint32_t cp = entity(html + i, n - i, &k);
            if (!cp)
                k = 1;
            put_cp(&c, cp ? cp : '&');
        } else {
            put_cp(&c, utf8_decode((const unsigned char *)html + i, n - i, &k));
        }
        i += k;
    }
    c.p[c.len] = '\0';
    sb_free(t);
    return c.p;
}
