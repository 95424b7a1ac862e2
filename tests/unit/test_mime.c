/* SPDX-License-Identifier: MIT */
/*
 * connectors/email/mime.c on messages shaped as real clients write them
 * (the .eml files of tests/fixtures/email): headers decoded, the text chosen and made UTF-8, quoted
 * history and signatures set apart, attachments listed, machine mail flagged, limits kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/mime.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

static char *slurp(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SB_FIXTURES, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void parse(const char *name, sb_mime_msg_t *m)
{
    size_t n;
    char *raw = slurp(name, &n);
    assert_int_equal(sb_mime_parse(raw, n, m), 0);
    free(raw);
}

static void test_mime_thunderbird_plain(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("thunderbird-plain.eml", &m);
    assert_string_equal(m.from_addr, "ana@example.org");
    assert_string_equal(m.from_name, "Ana Lima");
    assert_string_equal(m.subject, "Order 1042 arrived damaged");
    assert_string_equal(m.message_id, "3f1c2a9e-7b1d-4c52-9e0a-1d2c3b4a5f60@example.org");
    assert_string_equal(m.date, "2026-11-29T14:03:12+01:00");
    assert_string_equal(m.in_reply_to, "");
    assert_int_equal(m.n_references, 0);
    assert_int_equal(m.flags, 0);
    assert_string_equal(m.text,
                        "Hello,\n\nthe parcel for order 1042 arrived today and the lid of "
                        "the teapot is\ncracked. Could you send a replacement?\n\nThanks, Ana");
    /* (trailing spaces are trimmed, but not the signature delimiter's) */
    assert_string_equal(m.quoted, "-- \nAna Lima · +55 11 5555 0100");
    assert_int_equal(m.n_attachments, 0);
    sb_mime_free(&m);
}

static void test_mime_gmail_alternative_prefers_plain(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("gmail-alternative-reply.eml", &m);
    assert_string_equal(m.from_name, "Bob Stone");
    assert_string_equal(m.subject, "Re: Your order 1042");
    assert_string_equal(m.in_reply_to, "sb.c1.m2@shop.example");
    assert_int_equal(m.n_references, 2);
    assert_string_equal(m.references[0], "sb.c1.m1@shop.example");
    assert_string_equal(m.references[1], "sb.c1.m2@shop.example");
    assert_string_equal(m.date, "2026-11-30T09:15:40-05:00");
    assert_string_equal(m.text, "Yes, the blue one please. Thanks!");
    assert_non_null(strstr(m.quoted, "wrote:"));
    assert_non_null(strstr(m.quoted, "> Would you like the blue or the green lid?"));
    /* the HTML alternative is the same text: not an attachment */
    assert_int_equal(m.n_attachments, 0);
    sb_mime_free(&m);
}

static void test_mime_outlook_html_to_text(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("outlook-html.eml", &m);
    assert_string_equal(m.from_name, "Weber, Jonas");
    assert_string_equal(m.subject, "AW: Invoice 2026-311");
    assert_int_equal(m.n_references, 1);
    assert_string_equal(m.text, "Hello,\n\nthe invoice is attached & paid. See our PO "
                                "(https://firma.example/po/311).\n\n- Item A\n- Item B\n\n"
                                "Regards,\nJonas");
    assert_null(strstr(m.text, "alert"));
    assert_null(strstr(m.text, "MsoNormal"));
    assert_true(strncmp(m.quoted, "From: Shop Support <support@shop.example>\nSent: ", 48) == 0);
    assert_non_null(strstr(m.quoted, "Please find the invoice below."));
    sb_mime_free(&m);
}

static void test_mime_latin1_and_rfc2047(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("latin1-subject.eml", &m);
    assert_string_equal(m.from_name, "João Gonçalves");
    assert_string_equal(m.subject, "Encomenda nº 77 é urgente");
    assert_string_equal(m.text, "Olá, a encomenda nº 77 ainda não chegou. Obrigado, João");
    sb_mime_free(&m);
}

static void test_mime_attachment_rfc2231_name(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("attachment-rfc2231.eml", &m);
    assert_string_equal(m.from_name, "Chloé Martin");
    assert_string_equal(m.text, "Voici la facture.");
    assert_int_equal(m.n_attachments, 1);
    assert_string_equal(m.attachments[0].name, "Facture décembre €.pdf");
    assert_string_equal(m.attachments[0].type, "application/pdf");
    assert_int_equal(m.attachments[0].size, 45);
    assert_memory_equal(m.attachments[0].data, "%PDF-1.4\n", 9);
    sb_mime_free(&m);
}

static void test_mime_auto_reply_flagged(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("auto-reply.eml", &m);
    assert_int_equal(m.flags, SB_MIME_AUTO_SUBMITTED | SB_MIME_AUTOREPLY | SB_MIME_PRECEDENCE |
                                  SB_MIME_LIST);
    assert_string_equal(m.in_reply_to, "sb.c9.m3@shop.example");
    assert_string_equal(m.text, "I am out of the office until 14 December.");
    sb_mime_free(&m);
}

static void test_mime_dsn_flagged(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("dsn.eml", &m);
    assert_true(m.flags & SB_MIME_DSN);
    assert_true(m.flags & SB_MIME_AUTO_SUBMITTED);
    assert_string_equal(m.from_addr, "MAILER-DAEMON@mx.shop.example");
    assert_non_null(strstr(m.text, "550 5.1.1 User unknown"));
    /* the status report and the returned message are listed, the original not read */
    assert_int_equal(m.n_attachments, 2);
    assert_string_equal(m.attachments[0].type, "message/delivery-status");
    assert_string_equal(m.attachments[1].type, "message/rfc822");
    assert_non_null(memmem(m.attachments[1].data, m.attachments[1].size,
                           "Message-ID: <sb.c3.m1@shop.example>", 35));
    sb_mime_free(&m);
}

static void test_mime_limits(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    assert_int_equal(sb_mime_parse(NULL, 0, &m), SB_EINVAL);
    sb_mime_free(&m);
    assert_int_equal(sb_mime_parse("", SB_MIME_MAX_INPUT + 1, &m), SB_ETOOBIG);
    sb_mime_free(&m);
    /* the text is cut at SB_MAX_TEXT on a character boundary */
    size_t n = 3 * SB_MAX_TEXT;
    char *raw = sb_malloc(n + 200);
    int h =
        snprintf(raw, 200, "From: a@b.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    for (size_t i = 0; i < n; i += 2)
        memcpy(raw + h + i, "é", 2);
    assert_int_equal(sb_mime_parse(raw, (size_t)h + n, &m), 0);
    assert_true(m.truncated);
    assert_int_equal(strlen(m.text), SB_MAX_TEXT);
    sb_mime_free(&m);
    /* nested deeper than the bound: refused before libetpan recurses */
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    sb_buf_puts(&b, "From: a@b.example\r\n");
    for (int i = 0; i < 100; i++)
        sb_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    sb_buf_puts(&b, "\r\nhi\r\n");
    assert_int_equal(sb_mime_parse(b.data, b.len, &m), SB_EDEPTH);
    sb_mime_free(&m);
    sb_buf_dispose(&b);
    /* twelve levels, well formed: parsed, but parts below SB_MIME_MAX_DEPTH are not read
     * (seven levels are) */
    sb_buf_init(&b, 1 << 20);
    sb_buf_puts(&b, "From: a@b.example\r\n");
    for (int i = 0; i < 12; i++)
        sb_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    sb_buf_puts(&b, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    for (int i = 11; i >= 0; i--)
        sb_buf_printf(&b, "--b%d--\r\n", i);
    assert_int_equal(sb_mime_parse(b.data, b.len, &m), SB_EDEPTH);
    assert_null(strstr(m.text, "deep"));
    sb_mime_free(&m);
    sb_buf_dispose(&b);
    sb_buf_init(&b, 1 << 20);
    sb_buf_puts(&b, "From: a@b.example\r\n");
    for (int i = 0; i < 7; i++)
        sb_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    sb_buf_puts(&b, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    for (int i = 6; i >= 0; i--)
        sb_buf_printf(&b, "--b%d--\r\n", i);
    assert_int_equal(sb_mime_parse(b.data, b.len, &m), 0);
    assert_string_equal(m.text, "deep");
    sb_mime_free(&m);
    sb_buf_dispose(&b);
    sb_free(raw);
}

static void test_mime_html_details(void **state)
{
    (void)state;
    const char *raw = "From: a@b.example\r\nContent-Type: text/html; charset=windows-1252\r\n\r\n"
                      "<p>Price&nbsp;10&#8364; \x80 &lt;b&gt; <a href=\"https://x.example/\">"
                      "https://x.example/</a></p><style>p{}</style><!-- hidden --><p>bye</p>";
    sb_mime_msg_t m;
    assert_int_equal(sb_mime_parse(raw, strlen(raw), &m), 0);
    assert_string_equal(m.text, "Price 10€ € <b> https://x.example/\n\nbye");
    sb_mime_free(&m);
    /* a link longer than the URL buffer is cut on a character, not inside one */
    sb_buf_t b;
    sb_buf_init(&b, 1 << 16);
    sb_buf_puts(&b, "From: a@b.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                    "<a href=\"https://x.example/");
    for (int i = 0; i < 600; i++)
        sb_buf_puts(&b, "é");
    sb_buf_puts(&b, "\">label</a>");
    assert_int_equal(sb_mime_parse(b.data, b.len, &m), 0);
    assert_true(sb_utf8_valid(m.text, strlen(m.text)));
    assert_true(strncmp(m.text, "label (https://x.example/éé", 29) == 0);
    sb_mime_free(&m);
    sb_buf_dispose(&b);
    /* a lone '<' is text, and the space after it stays */
    const char *lt = "From: a@b.example\r\nContent-Type: text/html\r\n\r\n3 < 4 &amp; 5 > 2<br/>ok";
    assert_int_equal(sb_mime_parse(lt, strlen(lt), &m), 0);
    assert_string_equal(m.text, "3 < 4 & 5 > 2\nok");
    sb_mime_free(&m);
}

static void test_mime_quote_shapes(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    /* Outlook plain text: the underscore rule and the From/Sent block go to quoted */
    const char *outlook = "From: c@d.example\r\nSubject: Re: x\r\n\r\nFine by me.\r\n\r\n"
                          "________________________________\r\nFrom: Shop <s@shop.example>\r\n"
                          "Sent: Monday, 30 November 2026 17:00\r\nTo: c@d.example\r\n\r\nOld.\r\n";
    assert_int_equal(sb_mime_parse(outlook, strlen(outlook), &m), 0);
    assert_string_equal(m.text, "Fine by me.");
    assert_true(strncmp(m.quoted, "________________________________\nFrom: Shop", 43) == 0);
    sb_mime_free(&m);
    /* an attribution wrapped over two lines; answers between quotes keep their lines */
    const char *inline_ =
        "From: c@d.example\r\n\r\n> Which colour?\r\nBlue.\r\n> Which size?\r\n"
        "Large.\r\n\r\nOn Mon, 30 Nov 2026 at 14:01, Shop Support <s@shop.example>\r\n"
        "wrote:\r\n> Hello\r\n";
    assert_int_equal(sb_mime_parse(inline_, strlen(inline_), &m), 0);
    assert_string_equal(m.text, "Blue.\nLarge.");
    assert_string_equal(m.quoted, "> Which colour?\n> Which size?\n\nOn Mon, 30 Nov 2026 at 14:01, "
                                  "Shop Support <s@shop.example>\nwrote:\n> Hello");
    sb_mime_free(&m);
    /* ISO-2022-JP, as Japanese clients still send it, and an RFC 2047 B-word subject */
    const char *jp = "From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <t@example.jp>\r\n"
                     "Subject: =?UTF-8?B?5rOo5paH?=\r\n"
                     "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
                     "\x1b$B$3$s$K$A$O\x1b(B\r\n";
    assert_int_equal(sb_mime_parse(jp, strlen(jp), &m), 0);
    assert_string_equal(m.from_name, "田中");
    assert_string_equal(m.subject, "注文");
    assert_string_equal(m.text, "こんにちは");
    sb_mime_free(&m);
}

static void test_mime_format_flowed(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("thunderbird-flowed.eml", &m);
    /* soft breaks joined (their space kept, DelSp=no), the stuffed space before "From" gone */
    assert_string_equal(m.text, "The new lid arrived and fits well, thank you for the quick "
                                "replacement. From now on I will order here again.");
    /* quoted paragraphs joined per depth, the depth change and "-- " kept as lines */
    assert_string_equal(m.quoted, "On 29/11/2026 15:00, Shop Support wrote:\n"
                                  "> We are sorry the lid was cracked; a new one leaves today.\n"
                                  ">> Could you send a replacement?\n\n-- \nAna Lima");
    sb_mime_free(&m);
    /* DelSp=yes: the space of a soft break is the client's, dropped when joining */
    const char *delsp = "From: c@d.example\r\n"
                        "Content-Type: text/plain; charset=UTF-8; format=flowed; delsp=yes\r\n\r\n"
                        "Sch\xc3\xb6ne Gr\xc3\xbc \r\n\xc3\x9f"
                        "e  \r\naus Berlin\r\n";
    assert_int_equal(sb_mime_parse(delsp, strlen(delsp), &m), 0);
    assert_string_equal(m.text, "Schöne Grüße aus Berlin");
    sb_mime_free(&m);
    /* without format=flowed, a trailing space is no soft break */
    const char *fixed = "From: c@d.example\r\nContent-Type: text/plain\r\n\r\nOne \r\nTwo\r\n";
    assert_int_equal(sb_mime_parse(fixed, strlen(fixed), &m), 0);
    assert_string_equal(m.text, "One\nTwo");
    sb_mime_free(&m);
}

static void test_mime_inline_text_parts_joined(void **state)
{
    (void)state;
    sb_mime_msg_t m;
    parse("apple-text-image-text.eml", &m);
    assert_string_equal(m.text, "Here is the photo of the handle, it came off on the first day "
                                "of use:\n\nCan you send a new one?\n\nBea");
    /* the image stays an attachment, the second text is not one */
    assert_int_equal(m.n_attachments, 1);
    assert_string_equal(m.attachments[0].name, "handle.png");
    assert_string_equal(m.attachments[0].type, "image/png");
    sb_mime_free(&m);
}

static void test_mime_qp_cut_inside_an_escape(void **state)
{
    (void)state;
    /* the message ends inside a quoted-printable escape: nothing is read past its end */
    const char *text = "From: a@b.example\r\nContent-Type: text/plain\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\nprice =3D 5 =3";
    size_t n = strlen(text);
    char *raw = sb_malloc(n);
    memcpy(raw, text, n);
    sb_mime_msg_t m;
    assert_int_equal(sb_mime_parse(raw, n, &m), 0);
    assert_true(strncmp(m.text, "price = 5 ", 10) == 0);
    sb_mime_free(&m);
    sb_free(raw);
}

static void test_mime_fallback_id(void **state)
{
    (void)state;
    char a[SB_MIME_FALLBACK_ID_LEN], b[SB_MIME_FALLBACK_ID_LEN];
    sb_mime_fallback_id("abc", 3, a);
    assert_string_equal(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* the same bytes fetched again give the same key; one byte more does not */
    const char *raw = "From: a@b.example\r\nSubject: x\r\n\r\nhi\r\n";
    sb_mime_fallback_id(raw, strlen(raw), a);
    sb_mime_fallback_id(raw, strlen(raw), b);
    assert_string_equal(a, b);
    sb_mime_fallback_id(raw, strlen(raw) - 1, b);
    assert_string_not_equal(a, b);
    sb_mime_fallback_id(NULL, 5, a);
    assert_string_equal(a, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_mime_automatic_rule(void **state)
{
    (void)state;
    assert_false(sb_mime_is_automatic(NULL));
    assert_false(sb_mime_is_permanent_bounce(NULL));
    sb_mime_msg_t m;
    const char *human = "From: a@b.example\r\nAuto-Submitted: no\r\n\r\nhi\r\n";
    assert_int_equal(sb_mime_parse(human, strlen(human), &m), 0);
    assert_false(sb_mime_is_automatic(&m));
    assert_false(sb_mime_is_permanent_bounce(&m));
    for (unsigned bit = 1; bit <= SB_MIME_AUTO_RESPONSE_SUPPRESS; bit <<= 1) {
        m.flags = bit;
        assert_true(sb_mime_is_automatic(&m));
    }
    m.flags = SB_MIME_DSN;
    /* only failed with a 5.x.x status is a bounce to act on */
    const struct {
        const char *action, *status;
        bool permanent;
    } cases[] = {{"failed", "5.1.1", true},
                 {"failed", "4.4.1", false},
                 {"delayed", "5.1.1", false},
                 {"delayed", "4.4.7", false},
                 {"failed", "", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sb_free(m.bounce_action), sb_free(m.bounce_status);
        m.bounce_action = sb_strdup(cases[i].action);
        m.bounce_status = sb_strdup(cases[i].status);
        assert_int_equal(sb_mime_is_permanent_bounce(&m), cases[i].permanent);
    }
    sb_mime_free(&m);
}

static void test_mime_dsn_status_fields(void **state)
{
    (void)state;
    /* a status with a comment, an address in brackets without a type, tabs in the folding */
    const char *raw =
        "From: postmaster@mx.example\r\nContent-Type: multipart/report; "
        "report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        "failed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: <x@y.example>\r\n"
        "ACTION: Failed\r\nStatus: 5.2.2 (mailbox full)\r\nDiagnostic-Code: smtp;\r\n\t552 "
        "full\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: "
        "<orig@shop.example>\r\nSubject: x\r\n--b--\r\n";
    sb_mime_msg_t m;
    assert_int_equal(sb_mime_parse(raw, strlen(raw), &m), 0);
    assert_string_equal(m.bounce_recipient, "x@y.example");
    assert_string_equal(m.bounce_action, "failed");
    assert_string_equal(m.bounce_status, "5.2.2");
    assert_string_equal(m.bounce_diagnostic, "552 full");
    assert_string_equal(m.bounce_message_id, "orig@shop.example");
    assert_true(sb_mime_is_permanent_bounce(&m));
    sb_mime_free(&m);
    /* a status that is no RFC 3463 code is left empty */
    const char *odd = "From: postmaster@mx.example\r\nContent-Type: multipart/report; boundary=b"
                      "\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
                      "Final-Recipient: rfc822; z@y.example\r\nAction: failed\r\nStatus: 550"
                      "\r\n--b--\r\n";
    assert_int_equal(sb_mime_parse(odd, strlen(odd), &m), 0);
    assert_string_equal(m.bounce_recipient, "z@y.example");
    assert_string_equal(m.bounce_status, "");
    assert_false(sb_mime_is_permanent_bounce(&m));
    sb_mime_free(&m);
    /* returned headers with a broken field (libetpan's field parser leaked on it) */
    const char *broken = "From: postmaster@mx.example\r\nContent-Type: multipart/report; boundary=b"
                         "\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
                         "Final-Recipient: rfc822; z@y.example\r\nAction: failed\r\n"
                         "\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                         "Return-Path: <support@shop.exam\r\nMessage-Id:\r\n <x@y>\r\n--b--\r\n";
    assert_int_equal(sb_mime_parse(broken, strlen(broken), &m), 0);
    assert_string_equal(m.bounce_message_id, "x@y");
    sb_mime_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime_thunderbird_plain),
        cmocka_unit_test(test_mime_gmail_alternative_prefers_plain),
        cmocka_unit_test(test_mime_outlook_html_to_text),
        cmocka_unit_test(test_mime_latin1_and_rfc2047),
        cmocka_unit_test(test_mime_attachment_rfc2231_name),
        cmocka_unit_test(test_mime_auto_reply_flagged),
        cmocka_unit_test(test_mime_dsn_flagged),
        cmocka_unit_test(test_mime_limits),
        cmocka_unit_test(test_mime_html_details),
        cmocka_unit_test(test_mime_quote_shapes),
        cmocka_unit_test(test_mime_format_flowed),
        cmocka_unit_test(test_mime_inline_text_parts_joined),
        cmocka_unit_test(test_mime_qp_cut_inside_an_escape),
        cmocka_unit_test(test_mime_fallback_id),
        cmocka_unit_test(test_mime_automatic_rule),
        cmocka_unit_test(test_mime_dsn_status_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
