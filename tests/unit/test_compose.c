/* SPDX-License-Identifier: MIT */
/*
 * connectors/email/compose.c: the headers of an outbound mail, the stable "Re:", the
 * deterministic Message-ID, the capped References, RFC 2047 and quoted-printable within
 * their line limits, header injection refused, the HTML part, and the round trip: what we
 * send, read back by our own parser (connectors/email/mime.c) as a customer's client would,
 * gives the same text, subject and ids, and a reply shaped as Gmail, Outlook and Apple Mail
 * write them points back at our Message-ID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/compose.h"
#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#define DATE_MS 1796088800000LL /* Tue, 1 Dec 2026 ... */

static sb_email_compose_t base(void)
{
    return (sb_email_compose_t){
        .from_addr = "support@example.org",
        .from_name = "Example Support",
        .to_addr = "ana@customer.test",
        .to_name = "Ana Lima",
        .subject = "Where is my order?",
        .reply = true,
        .msg_id = "m_7Fq2abc",
        .in_reply_to = "CAB123@mail.gmail.com",
        .date_ms = DATE_MS,
        .text = "Hello Ana,\n\nit left today.\nBest, Sam",
    };
}

static char *compose(const sb_email_compose_t *c)
{
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(sb_email_compose(c, &out, &n), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    return out;
}

/* The unfolded value of the first header called name (in the head only), or NULL. */
static char *header(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = msg; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
            continue;
        sb_buf_t b;
        sb_buf_init(&b, 1 << 16);
        const char *v = p + nl + 1;
        while (*v == ' ')
            v++;
        for (;;) {
            const char *eol = strstr(v, "\r\n");
            sb_buf_append(&b, v, (size_t)(eol - v));
            if (eol[2] != ' ' && eol[2] != '\t')
                break;
            v = eol + 2; /* unfolding removes the CRLF only */
        }
        sb_buf_append(&b, "", 1);
        return sb_buf_steal(&b, NULL);
    }
    return NULL;
}

static void assert_header(const char *msg, const char *name, const char *want)
{
    char *v = header(msg, name);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    sb_free(v);
}

/* Every line ends in CRLF (no bare CR or LF) and is at most max characters. */
static void assert_lines(const char *msg, size_t max)
{
    for (const char *p = msg; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true((size_t)(eol - p) <= max);
        assert_null(memchr(p, '\n', (size_t)(eol - p)));
        assert_null(memchr(p, '\r', (size_t)(eol - p)));
        p = eol + 2;
    }
}

/* A quoted-printable part's body decoded (soft breaks joined, =XX undone, CRLF kept). */
static char *qp_decode(const char *s, const char *end)
{
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    while (s < end) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        } else if (s[0] == '=') {
            char hex[3] = {s[1], s[2], 0};
            char c = (char)strtol(hex, NULL, 16);
            sb_buf_append(&b, &c, 1);
            s += 3;
        } else {
            sb_buf_append(&b, s++, 1);
        }
    }
    sb_buf_append(&b, "", 1);
    return sb_buf_steal(&b, NULL);
}

/* The decoded body of the part of that content type. */
static char *part(const char *msg, const char *type)
{
    char want[64];
    snprintf(want, sizeof(want), "Content-Type: %s;", type);
    const char *p = strstr(msg, want);
    assert_non_null(p);
    assert_non_null(strstr(p, "Content-Transfer-Encoding: quoted-printable\r\n"));
    const char *body = strstr(p, "\r\n\r\n") + 4;
    const char *end = strstr(body, "\r\n--=_sb_");
    assert_non_null(end);
    return qp_decode(body, end);
}

static void test_compose_headers(void **state)
{
    sb_email_compose_t c = base();
    c.conversation = "c_9x";
    char *m = compose(&c);
    assert_header(m, "Date", "Tue, 1 Dec 2026 01:33:20 +0000");
    assert_header(m, "From", "\"Example Support\" <support@example.org>");
    assert_header(m, "To", "\"Ana Lima\" <ana@customer.test>");
    assert_header(m, "Subject", "Re: Where is my order?");
    assert_header(m, "Message-ID", "<sb.m_7Fq2abc@example.org>");
    assert_header(m, "In-Reply-To", "<CAB123@mail.gmail.com>");
    assert_header(m, "References", "<CAB123@mail.gmail.com>");
    assert_header(m, "MIME-Version", "1.0");
    assert_header(m, "X-Switchboard-Conversation", "c_9x");
    assert_header(m, "Auto-Submitted", NULL); /* a person wrote it */
    assert_header(m, "Reply-To", NULL);
    char *ct = header(m, "Content-Type");
    assert_non_null(strstr(ct, "multipart/alternative; boundary=\"=_sb_"));
    sb_free(ct);
    assert_lines(m, 76);
    sb_free(m);

    c = base();
    c.reply_to = "support+c_9x.sig@example.org";
    c.domain = "mail.example.org";
    c.from_name = "Say \"hi\" \\ o/";
    c.automatic = SB_EMAIL_AUTO_REPLIED;
    m = compose(&c);
    assert_header(m, "Reply-To", "<support+c_9x.sig@example.org>");
    assert_header(m, "Message-ID", "<sb.m_7Fq2abc@mail.example.org>");
    assert_header(m, "From", "\"Say \\\"hi\\\" \\\\ o/\" <support@example.org>");
    assert_header(m, "Auto-Submitted", "auto-replied");
    assert_header(m, "X-Auto-Response-Suppress", "All");
    sb_free(m);
    c.automatic = SB_EMAIL_AUTO_GENERATED;
    c.in_reply_to = NULL;
    c.reply = false;
    m = compose(&c);
    assert_header(m, "Auto-Submitted", "auto-generated");
    assert_header(m, "In-Reply-To", NULL);
    assert_header(m, "References", NULL);
    assert_header(m, "Subject", "Where is my order?");
    sb_free(m);
}

static void test_compose_re_stable(void **state)
{
    static const char *const cases[][2] = {
        {"Hello", "Re: Hello"},
        {"Re: Hello", "Re: Hello"},
        {"RE: Re: re:Hello", "Re: Hello"},
        {"Aw: Sv: AW: SV: Hello", "Re: Hello"},
        {"Re[2]: Hello", "Re: Hello"},
        {"  Re:   Hello  again", "Re: Hello  again"},
        {"Reply needed", "Re: Reply needed"},
        {"Fwd: Hello", "Re: Fwd: Hello"},
        {"", "Re:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sb_email_compose_t c = base();
        c.subject = cases[i][0];
        char *m = compose(&c);
        assert_header(m, "Subject", cases[i][1]);
        /* The answer to our answer, answered again: still one "Re: ". */
        char *s1 = header(m, "Subject");
        c.subject = s1;
        char *m2 = compose(&c);
        assert_header(m2, "Subject", cases[i][1]);
        sb_free(s1);
        sb_free(m);
        sb_free(m2);
    }
    assert_string_equal(sb_email_subject_base("Sv: Re[12]: x"), "x");
    assert_string_equal(sb_email_subject_base("Re[x]: y"), "Re[x]: y");
}

static void test_compose_message_id_deterministic(void **state)
{
    sb_email_compose_t c = base();
    char *a = compose(&c), *b = compose(&c);
    assert_string_equal(a, b); /* a resend after a crash is byte for byte the same mail */
    c.msg_id = "m_other";
    char *d = compose(&c);
    assert_header(d, "Message-ID", "<sb.m_other@example.org>");
    char *ba = header(a, "Content-Type"), *bd = header(d, "Content-Type");
    assert_string_not_equal(ba, bd); /* the boundary follows the id */
    sb_free(ba);
    sb_free(bd);
    sb_free(a);
    sb_free(b);
    sb_free(d);

    char id[64];
    assert_int_equal(sb_email_message_id("m_1", "example.org", id, sizeof(id)), 0);
    assert_string_equal(id, "sb.m_1@example.org");
    assert_int_equal(sb_email_message_id("m 1", "example.org", id, sizeof(id)), SB_EINVAL);
    assert_int_equal(sb_email_message_id("m_1", "ex>ample.org", id, sizeof(id)), SB_EINVAL);
    assert_int_equal(sb_email_message_id("m_1", "example.org", id, 10), SB_EINVAL);
}

static void test_compose_references_capped(void **state)
{
    const char *refs[40];
    char ids[40][32];
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof(ids[i]), "r%02d@x.test", i);
        refs[i] = ids[i];
    }
    refs[5] = "has space@x"; /* not an id: left out, not refused */
    sb_email_compose_t c = base();
    c.references = refs;
    c.n_references = 40;
    c.in_reply_to = "last@x.test";
    char *m = compose(&c);
    char *r = header(m, "References");
    /* The first, then the last 19 of the chain (which ends with the message answered). */
    sb_buf_t want;
    sb_buf_init(&want, 4096);
    sb_buf_puts(&want, "<r00@x.test>");
    for (int i = 22; i < 40; i++)
        sb_buf_printf(&want, " <r%02d@x.test>", i);
    sb_buf_puts(&want, " <last@x.test>");
    assert_string_equal(r, want.data);
    assert_header(m, "In-Reply-To", "<last@x.test>");
    assert_lines(m, 76);
    sb_buf_dispose(&want);
    sb_free(r);
    sb_free(m);

    /* The message answered already ends the chain: not twice. */
    const char *two[] = {"a@x", "last@x.test"};
    c.references = two;
    c.n_references = 2;
    m = compose(&c);
    assert_header(m, "References", "<a@x> <last@x.test>");
    sb_free(m);
}

static void test_compose_injection_refused(void **state)
{
    const char *bad_refs[] = {"ok@x", "evil@x>\r\nBcc: all@x.test"};
    for (int k = 0; k < 13; k++) {
        sb_email_compose_t c = base();
        switch (k) {
        case 0:
            c.subject = "Hi\r\nBcc: victim@x.test";
            break;
        case 1:
            c.subject = "Hi\nthere";
            break;
        case 2:
            c.to_name = "Ana\r\nBcc: victim@x.test";
            break;
        case 3:
            c.from_name = "Tab\there";
            break;
        case 4:
            c.to_addr = "ana@customer.test>\r\nBcc: x@y.z";
            break;
        case 5:
            c.to_addr = "Ana <ana@customer.test>";
            break;
        case 6:
            c.reply_to = "a@b\n";
            break;
        case 7:
            c.in_reply_to = "x@y\r\nBcc: z@w";
            break;
        case 8:
            c.references = bad_refs;
            c.n_references = 2;
            break;
        case 9:
            c.conversation = "c_1\r\nX: y";
            break;
        case 10:
            c.subject = "caf\xe9";
            break; /* Latin-1, not UTF-8 */
        case 11:
            c.msg_id = "m_1@evil";
            break;
        case 12:
            c.text = NULL;
            break;
        }
        char *out = (char *)1;
        size_t n = 99;
        assert_int_equal(sb_email_compose(&c, &out, &n), SB_EINVAL);
        assert_null(out);
    }
}

static void test_compose_rfc2047(void **state)
{
    sb_email_compose_t c = base();
    c.subject = "Ihre Bestellung über 3 Artikel — Lieferung nach Köln verzögert sich um "
                "zwei Tage, 日本語の件名も大丈夫です";
    c.to_name = "Zoë Ångström";
    c.reply = false;
    char *m = compose(&c);
    assert_lines(m, 76);
    char *s = header(m, "Subject");
    /* Only encoded-words, each at most 75 characters, whole characters each. */
    for (char *w = strtok(s, " "); w; w = strtok(NULL, " ")) {
        assert_true(strncmp(w, "=?UTF-8?B?", 10) == 0);
        assert_true(strlen(w) <= 75);
    }
    sb_free(s);
    char *to = header(m, "To");
    assert_non_null(strstr(to, "=?UTF-8?B?"));
    assert_non_null(strstr(to, "<ana@customer.test>"));
    sb_free(to);
    sb_mime_msg_t p;
    assert_int_equal(sb_mime_parse(m, strlen(m), &p), 0);
    assert_string_equal(p.subject, c.subject);
    sb_mime_free(&p);
    sb_free(m);

    /* ASCII that would read as an encoded-word is encoded, so it reads as itself. */
    c.subject = "about =?UTF-8?B?SGk=?= literally";
    m = compose(&c);
    assert_int_equal(sb_mime_parse(m, strlen(m), &p), 0);
    assert_string_equal(p.subject, c.subject);
    sb_mime_free(&p);
    sb_free(m);

    /* A long ASCII subject is folded at spaces and unfolds to itself. */
    c.subject = "A very long subject line that goes on and on well past the seventy-eight "
                "characters a header line should have, with  two spaces kept";
    m = compose(&c);
    assert_lines(m, 76);
    assert_header(m, "Subject", c.subject);
    sb_free(m);
}

static void test_compose_body_parts(void **state)
{
    sb_email_compose_t c = base();
    c.text = "Hi <Ana> & co,\n"
             "see https://shop.example/orders/42?x=1&y=2. Or (http://a.example/b).\n"
             "From now on: caf\xc3\xa9 = good   \n"
             "\n"
             "A line long enough to need a soft break in quoted-printable, because it is "
             "longer than seventy-six characters by quite a lot of words.\n"
             "notalinkhttps://x.example";
    char *m = compose(&c);
    assert_lines(m, 76);
    char *plain = part(m, "text/plain");
    /* The decoded text is the text, with CRLF line ends. */
    assert_non_null(strstr(plain, "From now on: caf\xc3\xa9 = good   \r\n\r\n"));
    assert_non_null(strstr(plain, "seventy-six characters by quite a lot of words.\r\n"));
    assert_null(strstr(m, "\r\nFrom now")); /* "From " never starts a line as sent */
    char *html = part(m, "text/html");
    assert_non_null(strstr(html, "<p>Hi &lt;Ana&gt; &amp; co,<br>\r\n"));
    assert_non_null(strstr(html, "<a href=\"https://shop.example/orders/42?x=1&amp;y=2\">"
                                 "https://shop.example/orders/42?x=1&amp;y=2</a>. Or ("
                                 "<a href=\"http://a.example/b\">http://a.example/b</a>)."));
    assert_non_null(strstr(html, "</p>\r\n<p>A line long enough"));
    assert_non_null(strstr(html, "notalinkhttps://x.example</p>")); /* not at a word start */
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "src="));
    sb_free(plain);
    sb_free(html);
    sb_free(m);
}

/* A reply to (subject, id) as Gmail (0), Outlook (1: References only, "RE:") and Apple
 * Mail (2: In-Reply-To and References folded one per line) write its head. */
static int reply_shaped(char *out, size_t cap, size_t shape, const char *subject, const char *id)
{
    switch (shape) {
    case 0:
        return snprintf(out, cap,
                        "From: Ana Lima <ana@customer.test>\r\nTo: support@example.org\r\n"
                        "Subject: Re: %s\r\nMessage-ID: <CAC999@mail.gmail.com>\r\n"
                        "In-Reply-To: <%s>\r\nReferences: <first@x.test> <second@x.test>\r\n"
                        " <CAB123@mail.gmail.com> <%s>\r\n",
                        subject, id, id);
    case 1:
        return snprintf(out, cap,
                        "From: ana@customer.test\r\nTo: support@example.org\r\n"
                        "Subject: RE: %s\r\nMessage-ID: <AM0PR01@outlook.com>\r\n"
                        "Thread-Topic: x\r\nReferences: <%s>\r\n",
                        subject, id);
    default:
        return snprintf(out, cap,
                        "From: ana@customer.test\r\nTo: support@example.org\r\n"
                        "Subject: Re: %s\r\nMessage-ID: <1A2B@icloud.com>\r\n"
                        "In-Reply-To: <%s>\r\nReferences: <first@x.test>\r\n <%s>\r\n",
                        subject, id, id);
    }
}

static void test_compose_round_trip(void **state)
{
    const char *refs[] = {"first@x.test", "second@x.test"};
    sb_email_compose_t c = base();
    c.references = refs;
    c.n_references = 2;
    c.text = "Hello Ana,\n\nyour parcel left today: https://track.example/1\n\nBest, Sam";
    char *m = compose(&c);
    sb_mime_msg_t p;
    assert_int_equal(sb_mime_parse(m, strlen(m), &p), 0);
    assert_string_equal(p.text, c.text);
    assert_string_equal(p.subject, "Re: Where is my order?");
    assert_string_equal(p.message_id, "sb.m_7Fq2abc@example.org");
    assert_string_equal(p.in_reply_to, "CAB123@mail.gmail.com");
    assert_int_equal(p.n_references, 3);
    assert_string_equal(p.references[0], "first@x.test");
    assert_string_equal(p.references[2], "CAB123@mail.gmail.com");
    assert_string_equal(p.from_addr, "support@example.org");
    assert_string_equal(p.from_name, "Example Support");
    assert_string_equal(p.date, "2026-12-01T01:33:20+00:00");
    assert_int_equal(p.n_attachments, 0); /* the HTML part is the same text, not a file */
    assert_int_equal(p.flags, 0);

    /* The customer answers from Gmail, Outlook or Apple Mail: each shapes the reply its
     * own way; every one of them names our Message-ID where threading looks. */
    for (size_t i = 0; i < 3; i++) {
        char reply[2048];
        int n = reply_shaped(reply, sizeof(reply), i, p.subject, p.message_id);
        n += snprintf(reply + n, sizeof(reply) - (size_t)n,
                      "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n");
        sb_mime_msg_t r;
        assert_int_equal(sb_mime_parse(reply, (size_t)n, &r), 0);
        bool threads = strcmp(r.in_reply_to, p.message_id) == 0;
        for (size_t k = 0; k < r.n_references; k++)
            threads = threads || strcmp(r.references[k], p.message_id) == 0;
        assert_true(threads);
        /* ...and our answer to it keeps one "Re: ". */
        sb_email_compose_t again = base();
        again.subject = r.subject;
        char *m2 = compose(&again);
        assert_header(m2, "Subject", "Re: Where is my order?");
        sb_free(m2);
        sb_mime_free(&r);
    }
    sb_mime_free(&p);
    sb_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compose_headers),
        cmocka_unit_test(test_compose_re_stable),
        cmocka_unit_test(test_compose_message_id_deterministic),
        cmocka_unit_test(test_compose_references_capped),
        cmocka_unit_test(test_compose_injection_refused),
        cmocka_unit_test(test_compose_rfc2047),
        cmocka_unit_test(test_compose_body_parts),
        cmocka_unit_test(test_compose_round_trip),
    };
    return cmocka_run_group_tests_name("connectors/email/compose", tests, NULL, NULL);
}
