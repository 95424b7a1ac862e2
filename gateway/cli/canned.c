/* SPDX-License-Identifier: MIT */
/*
 * sbctl canned add|list|remove: the shared canned replies through the REST API
 * (GET /v1/canned, PUT and DELETE /v1/canned/{shortcut}; docs/canned.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/store.h"
#include "core/util.h"
#include "gateway/cli/client.h"

static int bad_shortcut(const char *s)
{
    fprintf(stderr, "sbctl: canned: bad shortcut '%s' (1 to 32 characters of a-z, 0-9, _ and -)\n",
            s ? s : "");
    return SBC_USAGE;
}

static int cmd_list(const sbc_opts_t *o)
{
    json_t *res;
    int code = sbc_call_json(o, "GET", "/v1/canned", NULL, &res);
    if (code != SBC_OK)
        return code;
    if (o->json) {
        sbc_print_json(res);
    } else {
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(res, "items"), i, it)
        {
            /* One line each: the text's first line, cut at a character, so a listing
             * stays readable; everything made safe for the terminal. */
            const char *text = json_string_value(json_object_get(it, "text"));
            size_t len = text ? strcspn(text, "\r\n") : 0, cut = len > 60 ? 60 : len;
            while (cut > 0 && cut < len && ((unsigned char)text[cut] & 0xC0) == 0x80)
                cut--;
            char *first = sb_strndup(text ? text : "", cut);
            char *sc = sbc_safe(json_string_value(json_object_get(it, "shortcut")));
            char *title = sbc_safe(json_string_value(json_object_get(it, "title")));
            char *line = sbc_safe(first);
            printf("/%-20s %-30s %s%s\n", sc, title, line,
                   cut < len || (text && text[len]) ? "…" : "");
            sb_free(first);
            sb_free(sc);
            sb_free(title);
            sb_free(line);
        }
    }
    json_decref(res);
    return SBC_OK;
}

static int cmd_add(const sbc_opts_t *o, const char *shortcut, const char *title, const char *text)
{
    if (!sb_canned_shortcut_valid(shortcut))
        return bad_shortcut(shortcut);
    char *owned = NULL;
    if (!text || strcmp(text, "-") == 0)
        text = owned = sbc_read_stdin();
    char *path = sb_asprintf("/v1/canned/%s", shortcut);
    json_t *body = json_pack("{s:s, s:s}", "title", title, "text", text), *res = NULL;
    int code = body ? sbc_call_json(o, "PUT", path, body, &res) : SBC_USAGE;
    if (!body)
        fprintf(stderr, "sbctl: canned: title and text must be valid UTF-8\n");
    if (code == SBC_OK && o->json)
        sbc_print_json(res);
    else if (code == SBC_OK)
        printf("saved /%s\n", shortcut);
    json_decref(res);
    json_decref(body);
    sb_free(path);
    sb_free(owned);
    return code;
}

static int cmd_remove(const sbc_opts_t *o, const char *shortcut)
{
    if (!sb_canned_shortcut_valid(shortcut))
        return bad_shortcut(shortcut);
    char *path = sb_asprintf("/v1/canned/%s", shortcut);
    json_t *res = NULL;
    int code = sbc_call_json(o, "DELETE", path, NULL, &res);
    if (code == SBC_OK)
        printf("removed /%s\n", shortcut);
    json_decref(res);
    sb_free(path);
    return code;
}

int sbc_canned(const sbc_opts_t *o, int n, char **w)
{
    const char *sub = n > 0 ? w[0] : NULL;
    if (sub && strcmp(sub, "list") == 0 && n == 1)
        return cmd_list(o);
    if (sub && strcmp(sub, "add") == 0 && (n == 3 || n == 4))
        return cmd_add(o, w[1], w[2], n == 4 ? w[3] : NULL);
    if (sub && strcmp(sub, "remove") == 0 && n == 2)
        return cmd_remove(o, w[1]);
    fprintf(stderr, "sbctl: canned: wrong arguments (see sbctl --help)\n");
    return SBC_USAGE;
}
