/* SPDX-License-Identifier: MIT */
/*
 * Text work libetpan does not do (hand-written, small and bounded; each loop walks its
 * input once): UTF-8 clean-up, HTML to readable text, and splitting a reply's new text from
 * its quoted history and signature. See connectors/email/mime.c for why these are ours.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/internal.h"
#include "core/util.h"
#include "core/alloc.h"
#include "core/buf.h"

static void put_cp(sb_buf_t *b, uint32_t c)
{
    char u[4];
    size_t n;
    if (c == 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        c = 0xfffd;
    if (c < 0x80)
        u[0] = (char)c, n = 1;
    else if (c < 0x800)
        u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    else if (c < 0x10000)
        u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
        u[2] = (char)(0x80 | (c & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
        u[2] = (char)(0x80 | ((c >> 6) & 0x3f)), u[3] = (char)(0x80 | (c & 0x3f)), n = 4;
    sb_buf_append(b, u, n);
}

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

static char *steal(sb_buf_t *b)
{
    char *s = sb_buf_steal(b, NULL);
    sb_buf_dispose(b);
    return s;
}

char *sb__email_utf8_clean(const char *s, size_t n)
{
    sb_buf_t b;
    sb_buf_init(&b, 3 * n + 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(u + i, n - i);
        if (len == 0) {
            put_cp(&b, 0xfffd);
            i++;
        } else if (u[i] == '\r') {
            sb_buf_append(&b, "\n", 1);
            i += i + 1 < n && u[i + 1] == '\n' ? 2 : 1;
        } else {
            bool bom = len == 3 && u[i] == 0xef && u[i + 1] == 0xbb && u[i + 2] == 0xbf;
            if ((u[i] >= 0x20 || u[i] == '\n' || u[i] == '\t') && !bom)
                sb_buf_append(&b, s + i, len);
            i += len;
        }
    }
    return steal(&b);
}

size_t sb__email_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t i = max;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
        i--;
    return i;
}

char *sb__email_header_value(const char *s, size_t n, size_t max)
{
    char *clean = sb__email_utf8_clean(s, n);
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; clean[i]; i++) {
        bool ws = clean[i] == ' ' || clean[i] == '\t' || clean[i] == '\n';
        if (ws) {
            space = o > 0;
            continue;
        }
        if (space)
            clean[o++] = ' ';
        space = false;
        clean[o++] = clean[i];
    }
    clean[sb__email_utf8_cut(clean, o, max)] = '\0';
    return clean;
}

/* ---- HTML to text ---- */

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},       {"lt", '<'},       {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},     {"ndash", 0x2013}, {"mdash", 0x2014},  {"hellip", 0x2026},
    {"lsquo", 0x2018},  {"rsquo", 0x2019}, {"ldquo", 0x201c},  {"rdquo", 0x201d},
    {"sbquo", 0x201a},  {"bdquo", 0x201e}, {"lsaquo", 0x2039}, {"rsaquo", 0x203a},
    {"euro", 0x20ac},   {"bull", 0x2022},  {"trade", 0x2122},  {"dagger", 0x2020},
    {"permil", 0x2030}, {"ensp", 0x2002},  {"emsp", 0x2003},   {"thinsp", 0x2009},
    {"zwnj", 0x200c},   {"zwj", 0x200d},   {"lrm", 0x200e},    {"rlm", 0x200f},
};

/* HTML's names for U+00A0 to U+00FF, in order */
static const char *const latin1_entities[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

/* Decodes the entity at s[0] == '&'; returns the bytes used (0: not an entity). */
static size_t entity(const char *s, size_t n, uint32_t *cp)
{
    size_t end = 1;
    while (end < n && end < 12 && s[end] != ';')
        end++;
    if (end >= n || s[end] != ';' || end < 2)
        return 0;
    if (s[1] == '#')
        return sb_html_charref(s + 1, end - 1, cp) ? end + 1 : 0;
    for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
        if (strlen(entities[i].name) == end - 1 && memcmp(s + 1, entities[i].name, end - 1) == 0)
            return *cp = entities[i].cp, end + 1;
    for (size_t i = 0; i < 96; i++)
        if (strlen(latin1_entities[i]) == end - 1 &&
            memcmp(s + 1, latin1_entities[i], end - 1) == 0)
            return *cp = 0xa0 + (uint32_t)i, end + 1;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Finds needle (lower case) in s[0..n) ignoring case; n when absent. */
static size_t find_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(s + i, needle, k) == 0)
            return i;
    return n;
}

/* n without the incomplete UTF-8 sequence s[0..n) may end with. */
static size_t whole_chars(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3)
        i--;
    if (i == 0 || (unsigned char)s[i - 1] < 0xc0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    return i - 1 + len > n ? i - 1 : n;
}

/* The value of attribute attr in the tag body t[0..n), copied into out (≤ cap-1). */
static void attr_value(const char *t, size_t n, const char *attr, char *out, size_t cap)
{
    out[0] = '\0';
    size_t k = strlen(attr);
    for (size_t i = 0; i + k < n; i++) {
        if ((i > 0 && !is_space(t[i - 1])) || strncasecmp(t + i, attr, k) != 0)
            continue;
        size_t j = i + k;
        while (j < n && is_space(t[j]))
            j++;
        if (j >= n || t[j] != '=')
            continue;
        j++;
        while (j < n && is_space(t[j]))
            j++;
        char q = j < n && (t[j] == '"' || t[j] == '\'') ? t[j++] : 0;
        size_t o = 0;
        while (j < n && o + 5 < cap && (q ? t[j] != q : !is_space(t[j]))) {
            uint32_t cp;
            size_t used = t[j] == '&' ? entity(t + j, n - j, &cp) : 0;
            if (used && cp > 0 && cp < 0x80) /* &amp; in a URL is its '&' */
                out[o++] = (char)cp, j += used;
            else
                out[o++] = t[j++];
        }
        o = whole_chars(out, o); /* the cap may have cut a character */
        out[o] = '\0';
        return;
    }
}

static bool tag_is(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

static const char *const block_tags[] = {
    "p",  "div", "br",    "tr",  "table", "ul",         "ol", "h1", "h2", "h3",      "h4", "h5",
    "h6", "hr",  "title", "pre", "li",    "blockquote", "dl", "dt", "dd", "section", NULL};
static const char *const skip_tags[] = {"script", "style", "head", "title", NULL};

/* Trims spaces at line ends (and starts when left), collapses blank lines into one. */
static char *tidy(const char *s, size_t n, bool left)
{
    sb_buf_t b;
    sb_buf_init(&b, n + 1);
    bool blank = false; /* a blank line since the last text */
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        size_t a = i, z = e;
        while (left && a < z && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (z > a && (s[z - 1] == ' ' || s[z - 1] == '\t'))
            z--;
        if (z - a == 2 && s[a] == '-' && s[a + 1] == '-' && z < e && s[z] == ' ')
            z++; /* the signature delimiter is "-- ", its space included */
        bool empty = true;
        for (size_t k = a; k < z && empty; k++)
            empty = s[k] == ' ' || s[k] == '\t';
        if (empty) {
            blank = true;
        } else {
            if (b.len > 0)
                sb_buf_append(&b, "\n\n", blank ? 2 : 1);
            sb_buf_append(&b, s + a, z - a);
            blank = false;
        }
        i = e + 1;
    }
    return steal(&b);
}

/* Ends b with at least k line breaks (spaces after the last text do not count). */
static void breaks(sb_buf_t *b, size_t k)
{
    size_t have = 0, i = b->len;
    while (i > 0 && (b->data[i - 1] == ' ' || b->data[i - 1] == '\n'))
        have += b->data[--i] == '\n';
    if (i == 0) /* nothing written yet: no break needed */
        return;
    for (; have < k; have++)
        sb_buf_append(b, "\n", 1);
}

/* Turns every U+00A0 in s[0..n) into a space, in place; returns the new length. */
static size_t nbsp_to_space(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xa0)
            s[o++] = ' ', i++;
        else
            s[o++] = s[i];
    }
    return o;
}

char *sb__email_html_to_text(const char *s, size_t n)
{
    sb_buf_t b;
    sb_buf_init(&b, 2 * n + 64);
    char href[1024] = "";
    size_t link_start = 0;
    bool pre = false, space = false, mso = false;
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
                size_t e = find_ci(s + i + 4, n - i - 4, "-->");
                i = e == n - i - 4 ? n : i + 4 + e + 3;
                continue;
            }
            size_t j = i + 1;
            bool closing = j < n && s[j] == '/';
            j += closing;
            char name[16];
            size_t k = 0;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                             (s[j] >= '0' && s[j] <= '9'))) {
                if (k + 1 < sizeof(name))
                    name[k++] = (char)(s[j] | 0x20);
                j++;
            }
            name[k] = '\0';
            if (k == 0 && !(j < n && (s[j] == '!' || s[j] == '?'))) { /* a lone '<' */
                sb_buf_append(&b, "<", 1);
                space = false;
                i++;
                continue;
            }
            size_t body = j;
            char q = 0;
            while (j < n && (q || s[j] != '>')) {
                if (q && s[j] == q)
                    q = 0;
                else if (!q && (s[j] == '"' || s[j] == '\''))
                    q = s[j];
                j++;
            }
            size_t tag_end = j;
            i = j < n ? j + 1 : n;
            if (!closing && tag_is(name, skip_tags)) {
                char close[16];
                close[0] = '<', close[1] = '/';
                memcpy(close + 2, name, k + 1);
                size_t e = find_ci(s + i, n - i, close);
                i += e;
                continue;
            }
            if (strcmp(name, "a") == 0 && !closing) {
                attr_value(s + body, tag_end - body, "href", href, sizeof(href));
                link_start = b.len;
            } else if (strcmp(name, "a") == 0 && href[0]) {
                const char *url = href;
                if (strncasecmp(url, "mailto:", 7) == 0)
                    url += 7;
                const char *label = b.data ? b.data + link_start : "";
                size_t ll = b.len - link_start;
                while (ll > 0 && is_space(*label))
                    label++, ll--;
                if (strlen(url) != ll || memcmp(url, label, ll) != 0) {
                    sb_buf_printf(&b, ll ? " (%s)" : "%s", url);
                }
                href[0] = '\0';
            } else if (strcmp(name, "pre") == 0) {
                pre = !closing;
            }
            if (strcmp(name, "p") == 0 && !closing) { /* Word's paragraphs have no margin */
                char cls[64];
                attr_value(s + body, tag_end - body, "class", cls, sizeof(cls));
                mso = strncmp(cls, "Mso", 3) == 0;
            }
            if (strcmp(name, "br") == 0) {
                sb_buf_append(&b, "\n", 1);
                space = false;
            } else if (tag_is(name, block_tags) && !(closing && strcmp(name, "li") == 0)) {
                bool para = (strcmp(name, "p") == 0 && !mso) ||
                            (name[0] == 'h' && name[1] >= '1' && name[1] <= '6');
                breaks(&b, para ? 2 : 1);
                if (strcmp(name, "li") == 0 && !closing)
                    sb_buf_append(&b, "- ", 2);
                space = false;
            } else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
                if (closing)
                    sb_buf_append(&b, " ", 1);
            }
            continue;
        }
        if (s[i] == '&') {
            uint32_t cp;
            size_t used = entity(s + i, n - i, &cp);
            if (used) {
                put_cp(&b, cp);
                i += used;
                space = cp == ' ';
                continue;
            }
        }
        if (is_space(s[i]) && !pre) {
            if (!space)
                sb_buf_append(&b, " ", 1);
            space = true;
            i++;
            continue;
        }
        space = false;
        sb_buf_append(&b, s + i, 1);
        i++;
    }
    /* a no-break space counts as text until here (Word's empty paragraphs hold one) */
    char *t = tidy(b.data ? b.data : "", nbsp_to_space(b.data, b.len), true);
    sb_buf_dispose(&b);
    return t;
}

/* ---- format=flowed (RFC 3676) ---- */

char *sb__email_unflow(const char *s, size_t n, bool delsp)
{
    sb_buf_t b;
    sb_buf_init(&b, n + 1);
    size_t open_depth = 0; /* quote depth of the paragraph being joined */
    bool open = false;     /* the last line was soft: the next one continues it */
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        size_t a = i, depth = 0;
        while (a < e && s[a] == '>')
            a++, depth++;
        if (a < e && s[a] == ' ') /* space-stuffing (or the space after the quote marks) */
            a++;
        size_t z = e;
        bool sig = z - a == 3 && memcmp(s + a, "-- ", 3) == 0;
        bool soft = !sig && z > a && s[z - 1] == ' ';
        if (soft && delsp)
            z--;
        if (open && depth != open_depth) /* a quote depth change ends the paragraph */
            sb_buf_append(&b, "\n", 1), open = false;
        if (!open && depth > 0) {
            for (size_t k = 0; k < depth; k++)
                sb_buf_append(&b, ">", 1);
            sb_buf_append(&b, " ", 1);
        }
        sb_buf_append(&b, s + a, z - a);
        open = soft, open_depth = depth;
        if (!soft && e < n)
            sb_buf_append(&b, "\n", 1);
        i = e + 1;
    }
    return steal(&b);
}

/* ---- quoted history and signatures ---- */

static bool starts(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && memcmp(s, p, k) == 0;
}

static bool ends(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n >= k && memcmp(s + n - k, p, k) == 0;
}

typedef struct line {
    const char *s;
    size_t n;
} line_t;

/* l without its leading spaces (Yahoo indents its attribution) */
static line_t unindent(const line_t *l)
{
    line_t t = *l;
    while (t.n > 0 && (t.s[0] == ' ' || t.s[0] == '\t'))
        t.s++, t.n--;
    return t;
}

static bool contains(const line_t *l, const char *p)
{
    size_t k = strlen(p);
    for (size_t i = 0; i + k <= l->n; i++)
        if (memcmp(l->s + i, p, k) == 0)
            return true;
    return false;
}

static bool attribution_end(const line_t *l)
{
    /* Apple Mail in German: "Am 01.12.2026 um 12:30 schrieb Name <address>:" */
    return ends(l->s, l->n, "wrote:") || ends(l->s, l->n, "schrieb:") ||
           ends(l->s, l->n, "a écrit :") || ends(l->s, l->n, "a écrit:") ||
           (ends(l->s, l->n, ">:") && contains(l, " schrieb "));
}

static bool attribution_start(const line_t *l)
{
    line_t t = unindent(l);
    return starts(t.s, t.n, "On ") || starts(t.s, t.n, "Am ") || starts(t.s, t.n, "Le ");
}

/*
 * A separator line: dashes, a few words, dashes ("-----Original Message-----", Proton's
 * "------- Original Message -------", Samsung's "-------- Original message --------",
 * Gmail's "---------- Forwarded message ---------"), compared without case.
 */
static bool separator(const line_t *l)
{
    static const char *const words[] = {"original message",
                                        "forwarded message",
                                        "ursprüngliche nachricht",
                                        "weitergeleitete nachricht",
                                        "message d'origine",
                                        "message transféré",
                                        NULL};
    line_t t = unindent(l);
    size_t a = 0, z = t.n;
    while (a < z && (t.s[a] == '-' || t.s[a] == ' '))
        a++;
    while (z > a && (t.s[z - 1] == '-' || t.s[z - 1] == ' '))
        z--;
    if (a < 2 || t.n - z < 2)
        return false;
    for (const char *const *w = words; *w; w++)
        if (strlen(*w) == z - a && strncasecmp(t.s + a, *w, z - a) == 0)
            return true;
    return false;
}

/* The one line mobile and webmail clients sign with: "Sent from my iPhone" and kin. */
static bool client_signature(const line_t *l)
{
    static const char *const sigs[] = {"Sent from my ",
                                       "Sent from Yahoo Mail",
                                       "Sent from Outlook",
                                       "Sent from Mail for",
                                       "Get Outlook for ",
                                       "Sent with Proton Mail",
                                       "Von meinem ",
                                       "Envoyé de mon ",
                                       "Enviado desde mi ",
                                       "Enviado do meu ",
                                       NULL};
    line_t t = unindent(l);
    for (const char *const *p = sigs; *p; p++)
        if (starts(t.s, t.n, *p) && t.n < 80)
            return true;
    return false;
}

/* Does a quoted block start at line i? */
static bool quote_starts(const line_t *l, size_t count, size_t i)
{
    if (attribution_start(&l[i]) &&
        (attribution_end(&l[i]) || (i + 1 < count && attribution_end(&l[i + 1]))))
        return true;
    if (separator(&l[i]) || client_signature(&l[i]) ||
        starts(l[i].s, l[i].n, "Begin forwarded message:"))
        return true;
    if (l[i].n == 3 && memcmp(l[i].s, "-- ", 3) == 0)
        return true;
    if (starts(l[i].s, l[i].n, "From: ") || starts(l[i].s, l[i].n, "*From:*"))
        for (size_t j = i + 1; j < count && j <= i + 4; j++)
            if (starts(l[j].s, l[j].n, "Sent: ") || starts(l[j].s, l[j].n, "Date: ") ||
                starts(l[j].s, l[j].n, "*Sent:*"))
                return true;
    return false;
}

static bool rule_or_blank(const line_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->s[i] != '_' && l->s[i] != ' ' && l->s[i] != '\t')
            return false;
    return true;
}

void sb__email_split_quoted(const char *text, char **fresh, char **quoted)
{
    size_t n = strlen(text), count = 1;
    for (size_t i = 0; i < n; i++)
        count += text[i] == '\n';
    line_t *l = sb_calloc(count, sizeof(*l));
    count = 0;
    for (size_t i = 0; i <= n;) {
        size_t e = i;
        while (e < n && text[e] != '\n')
            e++;
        l[count].s = text + i, l[count].n = e - i;
        count++;
        i = e + 1;
    }
    size_t cut = count;
    for (size_t i = 0; i < count && cut == count; i++)
        if (quote_starts(l, count, i))
            cut = i;
    /* Outlook's rule of underscores above its From: block goes with it */
    while (cut > 0 && cut < count && rule_or_blank(&l[cut - 1]))
        cut--;
    sb_buf_t f, q;
    sb_buf_init(&f, n + 1);
    sb_buf_init(&q, n + 1);
    for (size_t i = 0; i < count; i++) {
        sb_buf_t *to = i >= cut || (l[i].n > 0 && l[i].s[0] == '>') ? &q : &f;
        sb_buf_append(to, l[i].s, l[i].n);
        sb_buf_append(to, "\n", 1);
    }
    sb_free(l);
    *fresh = tidy(f.data ? f.data : "", f.len, false);
    *quoted = tidy(q.data ? q.data : "", q.len, false);
    sb_buf_dispose(&f);
    sb_buf_dispose(&q);
}

/* ---- URLs ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* s[0..n) %-decoded; NULL if a %XX is broken or decodes to NUL. */
char *sb__email_pct_decode(const char *s, size_t n)
{
    char *out = sb_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= n)
            goto bad;
        int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
        if (a < 0 || b < 0 || (a == 0 && b == 0))
            goto bad;
        *o++ = (char)(a << 4 | b);
        i += 2;
    }
    *o = '\0';
    return out;
bad:
    sb_free(out);
    return NULL;
}
