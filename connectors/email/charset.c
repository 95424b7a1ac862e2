/* SPDX-License-Identifier: MIT */
/*
 * Body and parameter text in any charset to UTF-8 (libetpan's charconv_buffer, on iconv),
 * with the labels read as browsers read them (the WHATWG Encoding Standard's mapping of
 * labels to decoders): mail clients label text with a charset narrower than the one they
 * wrote, and a converter for the label alone turns smart quotes, euro signs and CP932's
 * circled digits into garbage.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "connectors/email/internal.h"
#include "core/util.h"

/*
 * The decoder a label really means (as browsers do, WHATWG Encoding): mail labelled
 * Latin-1 or ASCII is written in Windows-1252, Shift_JIS in its Windows form CP932,
 * GB2312 in GBK (GB18030 holds both), EUC-KR and Outlook's ks_c_5601-1987 in CP949.
 */
static const char *decoder_for(const char *label)
{
    static const struct {
        const char *label, *decoder;
    } map[] = {
        {"iso-8859-1", "CP1252"}, {"iso8859-1", "CP1252"}, {"latin1", "CP1252"},
        {"us-ascii", "CP1252"},   {"ascii", "CP1252"},     {"windows-1252", "CP1252"},
        {"shift_jis", "CP932"},   {"shift-jis", "CP932"},  {"sjis", "CP932"},
        {"x-sjis", "CP932"},      {"gb2312", "GB18030"},   {"gbk", "GB18030"},
        {"x-gbk", "GB18030"},     {"euc-kr", "CP949"},     {"ks_c_5601-1987", "CP949"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(label, map[i].label) == 0)
            return map[i].decoder;
    return label;
}

static bool single_byte(const char *decoder)
{
    return strcmp(decoder, "CP1252") == 0 || strncasecmp(decoder, "iso-8859-", 9) == 0 ||
           strncasecmp(decoder, "windows-125", 11) == 0 || strcasecmp(decoder, "koi8-r") == 0 ||
           strcasecmp(decoder, "koi8-u") == 0;
}

char *sb__email_to_utf8(const char *charset, const char *s, size_t n)
{
    const char *dec = charset && *charset ? decoder_for(charset) : "CP1252";
    bool utf8 = sb_utf8_valid(s, n);
    if (strcasecmp(dec, "utf-8") == 0 || strcasecmp(dec, "utf8") == 0 || (utf8 && single_byte(dec)))
        return sb__email_utf8_clean(s, n);
    char *conv = NULL;
    size_t len = 0;
    if (charconv_buffer("utf-8", dec, s, n, &conv, &len) == MAIL_CHARCONV_NO_ERROR) {
        char *out = sb__email_utf8_clean(conv, len);
        charconv_buffer_free(conv);
        return out;
    }
    if (!utf8 && charconv_buffer("utf-8", "CP1252", s, n, &conv, &len) == MAIL_CHARCONV_NO_ERROR) {
        char *out = sb__email_utf8_clean(conv, len);
        charconv_buffer_free(conv);
        return out;
    }
    return sb__email_utf8_clean(s, n);
}
