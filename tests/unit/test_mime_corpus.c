/* SPDX-License-Identifier: MIT */
/*
 * connectors/email/mime.c on the corpus of tests/fixtures/email: every <name>.eml is parsed
 * and compared with <name>.expect, field by field; the test fails naming each fixture and
 * field that differ. A second test checks the checker: a wrong expectation (any field of
 * any fixture changed) must be reported, so a fixture cannot pass by comparing nothing.
 *
 * The .expect format (docs/email.md): one `key: value` per line, `#` comments; a block
 * value is `key:` followed by `| line` lines (`|` alone is an empty line). Keys left out
 * expect the empty value (no flags, no attachments, "no"), so every field is always
 * checked. Keys: rc, from, from-name, subject, date, message-id, in-reply-to, references
 * (ids separated by spaces) or references-count/-first/-last, flags (names or "none"),
 * automatic, permanent-bounce, truncated (yes/no), text, quoted or quoted-prefix,
 * attachment (`type size name`, or `type size` without a name, one line each, in order),
 * bounce-message-id, bounce-recipient, bounce-status, bounce-action, bounce-diagnostic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#define MAX_KV 128

typedef struct kv {
    char key[32];
    char *value; /* owned */
} kv_t;

typedef struct expect {
    kv_t kv[MAX_KV];
    size_t n;
} expect_t;

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sb_buf_t b;
    sb_buf_init(&b, SB_MIME_MAX_INPUT);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sb_buf_append(&b, chunk, got);
    fclose(f);
    char *s = sb_buf_steal(&b, n);
    sb_buf_dispose(&b);
    return s ? s : sb_strdup("");
}

static void expect_dispose(expect_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        sb_free(e->kv[i].value);
    e->n = 0;
}

/* The block value being read becomes the last entry's value. */
static void end_block(expect_t *e, sb_buf_t *block)
{
    char *v = sb_buf_steal(block, NULL);
    e->kv[e->n - 1].value = v ? v : sb_strdup("");
    sb_buf_dispose(block);
}

/* Parses an .expect file's text; a malformed line goes to *err (and is skipped). */
static void expect_parse(const char *s, expect_t *e, sb_buf_t *err, const char *name)
{
    e->n = 0;
    sb_buf_t block;
    bool in_block = false;
    for (const char *p = s; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len && p[len - 1] == '\r')
            len--;
        if (p[0] == '|' && in_block) {
            if (block.len)
                sb_buf_append(&block, "\n", 1);
            size_t skip = len >= 2 && p[1] == ' ' ? 2 : 1;
            if (len > skip)
                sb_buf_append(&block, p + skip, len - skip);
        } else {
            if (in_block) {
                end_block(e, &block);
                in_block = false;
            }
            const char *colon = memchr(p, ':', len);
            if (len && p[0] != '#' && (!colon || colon - p >= 32 || e->n == MAX_KV)) {
                sb_buf_printf(err, "%s.expect: bad line '%.*s'\n", name, (int)len, p);
            } else if (len && p[0] != '#') {
                kv_t *kv = &e->kv[e->n++];
                snprintf(kv->key, sizeof(kv->key), "%.*s", (int)(colon - p), p);
                const char *v = colon + 1;
                while (v < p + len && *v == ' ')
                    v++;
                if (v == p + len) {
                    kv->value = NULL;
                    sb_buf_init(&block, 1 << 24);
                    in_block = true;
                } else {
                    kv->value = sb_strndup(v, (size_t)(p + len - v));
                }
            }
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    if (in_block)
        end_block(e, &block);
}

/* The value of key (the first one), NULL when the expectation leaves it out. */
static const char *get(const expect_t *e, const char *key)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->kv[i].key, key) == 0)
            return e->kv[i].value;
    return NULL;
}

static const struct {
    const char *name;
    unsigned bit;
} flag_names[] = {
    {"auto-submitted", SB_MIME_AUTO_SUBMITTED},
    {"precedence", SB_MIME_PRECEDENCE},
    {"autoreply", SB_MIME_AUTOREPLY},
    {"list", SB_MIME_LIST},
    {"dsn", SB_MIME_DSN},
    {"mailer-daemon", SB_MIME_MAILER_DAEMON},
    {"auto-response-suppress", SB_MIME_AUTO_RESPONSE_SUPPRESS},
};

static void flags_text(unsigned flags, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (flags & flag_names[i].bit)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? " " : "",
                     flag_names[i].name);
    if (!out[0])
        snprintf(out, cap, "none");
}

/* Expected flags as bits; an unknown name gives ~0u (never equal). */
static unsigned flags_parse(const char *s)
{
    unsigned bits = 0;
    char word[64];
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " ");
        if (!k)
            break;
        snprintf(word, sizeof(word), "%.*s", (int)k, p);
        bool known = strcmp(word, "none") == 0;
        for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
            if (strcmp(word, flag_names[i].name) == 0)
                bits |= flag_names[i].bit, known = true;
        if (!known)
            return ~0u;
        p += k;
    }
    return bits;
}

typedef struct check {
    const char *fixture;
    sb_buf_t *report;
    int bad;
} check_t;

static void differ(check_t *c, const char *key, const char *want, const char *got)
{
    sb_buf_printf(c->report, "%s: %s:\n  expected: %s\n  got:      %s\n", c->fixture, key, want,
                  got);
    c->bad++;
}

static void same(check_t *c, const expect_t *e, const char *key, const char *got)
{
    const char *want = get(e, key);
    if (strcmp(want ? want : "", got) != 0)
        differ(c, key, want ? want : "", got);
}

static void yes_no(check_t *c, const expect_t *e, const char *key, bool got)
{
    const char *want = get(e, key);
    if (strcmp(want ? want : "no", got ? "yes" : "no") != 0)
        differ(c, key, want ? want : "no", got ? "yes" : "no");
}

static void references(check_t *c, const expect_t *e, const sb_mime_msg_t *m)
{
    const char *count = get(e, "references-count");
    if (count) {
        char got[32];
        snprintf(got, sizeof(got), "%zu", m->n_references);
        same(c, e, "references-count", got);
        same(c, e, "references-first", m->n_references ? m->references[0] : "");
        same(c, e, "references-last", m->n_references ? m->references[m->n_references - 1] : "");
        return;
    }
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < m->n_references; i++)
        sb_buf_printf(&b, "%s%s", i ? " " : "", m->references[i]);
    same(c, e, "references", b.data ? b.data : "");
    sb_buf_dispose(&b);
}

/* "type size name", or "type size" for an attachment without a name */
static void attachment_text(const sb_mime_attachment_t *a, char *out, size_t cap)
{
    snprintf(out, cap, "%s %zu%s%s", a->type, a->size, *a->name ? " " : "", a->name);
}

static void attachments(check_t *c, const expect_t *e, const sb_mime_msg_t *m)
{
    size_t k = 0;
    char got[1024];
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->kv[i].key, "attachment") != 0)
            continue;
        if (k < m->n_attachments) {
            attachment_text(&m->attachments[k], got, sizeof(got));
        } else {
            snprintf(got, sizeof(got), "(none)");
        }
        if (strcmp(e->kv[i].value, got) != 0)
            differ(c, "attachment", e->kv[i].value, got);
        k++;
    }
    for (; k < m->n_attachments; k++) {
        attachment_text(&m->attachments[k], got, sizeof(got));
        differ(c, "attachment", "(none)", got);
    }
}

static const char *const known_keys[] = {"rc",
                                         "from",
                                         "from-name",
                                         "subject",
                                         "date",
                                         "message-id",
                                         "in-reply-to",
                                         "references",
                                         "references-count",
                                         "references-first",
                                         "references-last",
                                         "flags",
                                         "automatic",
                                         "permanent-bounce",
                                         "truncated",
                                         "text",
                                         "quoted",
                                         "quoted-prefix",
                                         "attachment",
                                         "bounce-message-id",
                                         "bounce-recipient",
                                         "bounce-status",
                                         "bounce-action",
                                         "bounce-diagnostic",
                                         NULL};

/* Compares m (parsed with rc) with e; every difference goes to c->report. */
static void compare(check_t *c, const expect_t *e, int rc, const sb_mime_msg_t *m)
{
    for (size_t i = 0; i < e->n; i++) {
        bool known = false;
        for (const char *const *k = known_keys; *k && !known; k++)
            known = strcmp(*k, e->kv[i].key) == 0;
        if (!known)
            differ(c, e->kv[i].key, "(a known key)", "(unknown key)");
    }
    same(c, e, "rc", rc ? sb_err_name(rc) : "");
    same(c, e, "from", m->from_addr);
    same(c, e, "from-name", m->from_name);
    same(c, e, "subject", m->subject);
    same(c, e, "date", m->date);
    same(c, e, "message-id", m->message_id);
    same(c, e, "in-reply-to", m->in_reply_to);
    references(c, e, m);
    char flags[256];
    flags_text(m->flags, flags, sizeof(flags));
    const char *want = get(e, "flags");
    if (flags_parse(want ? want : "none") != m->flags)
        differ(c, "flags", want ? want : "none", flags);
    yes_no(c, e, "automatic", sb_mime_is_automatic(m));
    yes_no(c, e, "permanent-bounce", sb_mime_is_permanent_bounce(m));
    yes_no(c, e, "truncated", m->truncated);
    same(c, e, "text", m->text);
    const char *prefix = get(e, "quoted-prefix");
    if (prefix && strncmp(m->quoted, prefix, strlen(prefix)) != 0)
        differ(c, "quoted-prefix", prefix, m->quoted);
    else if (!prefix)
        same(c, e, "quoted", m->quoted);
    attachments(c, e, m);
    same(c, e, "bounce-message-id", m->bounce_message_id);
    same(c, e, "bounce-recipient", m->bounce_recipient);
    same(c, e, "bounce-status", m->bounce_status);
    same(c, e, "bounce-action", m->bounce_action);
    same(c, e, "bounce-diagnostic", m->bounce_diagnostic);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The fixtures' names (without .eml), sorted; *n of them. */
static char **fixtures(size_t *n)
{
    DIR *d = opendir(SB_FIXTURES);
    assert_non_null(d);
    char **names = sb_calloc(512, sizeof(char *));
    *n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL && *n < 512;) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".eml") == 0)
            names[(*n)++] = sb_strndup(de->d_name, len - 4);
    }
    closedir(d);
    qsort(names, *n, sizeof(char *), by_name);
    return names;
}

/* Loads fixture name's message and expectation; false (reported) when one is missing. */
static bool load(const char *name, char **raw, size_t *n, expect_t *e, sb_buf_t *report)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.eml", SB_FIXTURES, name);
    *raw = slurp(path, n);
    snprintf(path, sizeof(path), "%s/%s.expect", SB_FIXTURES, name);
    size_t en;
    char *text = slurp(path, &en);
    if (!*raw || !text) {
        sb_buf_printf(report, "%s: no %s\n", name, *raw ? ".expect" : ".eml");
        sb_free(*raw), sb_free(text);
        return false;
    }
    expect_parse(text, e, report, name);
    sb_free(text);
    return true;
}

static void test_mime_corpus_matches_expectations(void **state)
{
    (void)state;
    size_t count;
    char **names = fixtures(&count);
    sb_buf_t report;
    sb_buf_init(&report, 1 << 24);
    sb_buf_t failed_names;
    sb_buf_init(&failed_names, 1 << 16);
    static expect_t e;
    for (size_t i = 0; i < count; i++) {
        char *raw;
        size_t n;
        size_t before = report.len;
        if (load(names[i], &raw, &n, &e, &report)) {
            sb_mime_msg_t m;
            int rc = sb_mime_parse(raw, n, &m);
            check_t c = {.fixture = names[i], .report = &report};
            compare(&c, &e, rc, &m);
            sb_mime_free(&m);
            expect_dispose(&e);
            sb_free(raw);
        }
        if (report.len > before)
            sb_buf_printf(&failed_names, " %s", names[i]);
    }
    /* every .expect has its .eml */
    DIR *d = opendir(SB_FIXTURES);
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        size_t len = strlen(de->d_name);
        if (len > 7 && strcmp(de->d_name + len - 7, ".expect") == 0) {
            bool found = false;
            for (size_t i = 0; i < count && !found; i++)
                found = strlen(names[i]) == len - 7 && !strncmp(names[i], de->d_name, len - 7);
            if (!found) {
                sb_buf_printf(&report, "%s: no .eml\n", de->d_name);
                sb_buf_printf(&failed_names, " %s", de->d_name);
            }
        }
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < count; i++)
        sb_free(names[i]);
    sb_free(names);
    char *list = sb_buf_steal(&failed_names, NULL);
    sb_buf_dispose(&failed_names);
    if (report.len)
        fprintf(stderr, "%s", report.data);
    sb_buf_dispose(&report);
    printf("corpus: %zu fixtures\n", count);
    bool bad = list && *list;
    if (bad)
        print_error("fixtures differing from their expectation:%s\n", list);
    sb_free(list);
    if (bad)
        fail();
    assert_true(count >= 45);
}

/* A wrong value for one expectation entry (still well formed). */
static char *wrong(const kv_t *kv)
{
    const char *v = kv->value;
    if (strcmp(kv->key, "automatic") == 0 || strcmp(kv->key, "permanent-bounce") == 0 ||
        strcmp(kv->key, "truncated") == 0)
        return sb_strdup(strcmp(v, "yes") == 0 ? "no" : "yes");
    if (strcmp(kv->key, "flags") == 0)
        return sb_strdup(strcmp(v, "none") == 0 ? "list" : "none");
    if (strcmp(kv->key, "rc") == 0)
        return sb_strdup("");
    sb_buf_t b;
    sb_buf_init(&b, strlen(v) + 8);
    sb_buf_printf(&b, "%s~", v);
    return sb_buf_steal(&b, NULL);
}

static void test_mime_corpus_catches_wrong_expectations(void **state)
{
    (void)state;
    size_t count, entries = 0;
    char **names = fixtures(&count);
    sb_buf_t report, missed;
    sb_buf_init(&report, 1 << 26);
    sb_buf_init(&missed, 1 << 20);
    static expect_t e;
    for (size_t i = 0; i < count; i++) {
        char *raw;
        size_t n;
        if (!load(names[i], &raw, &n, &e, &report))
            continue;
        sb_mime_msg_t m;
        int rc = sb_mime_parse(raw, n, &m);
        for (size_t k = 0; k < e.n; k++, entries++) {
            char *keep = e.kv[k].value;
            e.kv[k].value = wrong(&e.kv[k]);
            check_t c = {.fixture = names[i], .report = &report};
            compare(&c, &e, rc, &m);
            if (c.bad == 0)
                sb_buf_printf(&missed, "%s: %s\n", names[i], e.kv[k].key);
            sb_free(e.kv[k].value);
            e.kv[k].value = keep;
        }
        /* an expectation that leaves out a field expects it empty */
        if (*m.subject) {
            expect_t less = e;
            size_t w = 0;
            for (size_t k = 0; k < e.n; k++)
                if (strcmp(e.kv[k].key, "subject") != 0)
                    less.kv[w++] = e.kv[k];
            less.n = w;
            check_t c = {.fixture = names[i], .report = &report};
            compare(&c, &less, rc, &m);
            if (c.bad == 0)
                sb_buf_printf(&missed, "%s: subject left out\n", names[i]);
        }
        sb_mime_free(&m);
        expect_dispose(&e);
        sb_free(raw);
    }
    if (missed.len)
        fail_msg("wrong expectations not reported:\n%s", missed.data);
    assert_true(entries > count * 5);
    for (size_t i = 0; i < count; i++)
        sb_free(names[i]);
    sb_free(names);
    sb_buf_dispose(&report);
    sb_buf_dispose(&missed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime_corpus_matches_expectations),
        cmocka_unit_test(test_mime_corpus_catches_wrong_expectations),
    };
    return cmocka_run_group_tests_name("connectors/email/mime corpus", tests, NULL, NULL);
}
