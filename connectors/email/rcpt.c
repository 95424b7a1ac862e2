/* SPDX-License-Identifier: MIT */
#include "connectors/email/rcpt.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "core/alloc.h"
#include "core/msg.h"

static void add(sb_rcpt_t *r, const char *a)
{
    if (!a || !*a || r->n >= SB_RCPT_MAX || strlen(a) > SB_MAX_EMAIL)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->addr[i], a) == 0)
            return;
    char *c = sb_strdup(a);
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->addr[r->n++] = c;
}

static void add_mailboxes(sb_rcpt_t *r, struct mailimf_mailbox_list *ml)
{
    if (!ml)
        return;
    for (clistiter *it = clist_begin(ml->mb_list); it; it = clist_next(it)) {
        struct mailimf_mailbox *mb = clist_content(it);
        add(r, mb->mb_addr_spec);
    }
}

static void add_list(sb_rcpt_t *r, struct mailimf_address_list *al)
{
    if (!al)
        return;
    for (clistiter *it = clist_begin(al->ad_list); it; it = clist_next(it)) {
        struct mailimf_address *a = clist_content(it);
        if (a->ad_type == MAILIMF_ADDRESS_MAILBOX)
            add(r, a->ad_data.ad_mailbox->mb_addr_spec);
        else if (a->ad_type == MAILIMF_ADDRESS_GROUP && a->ad_data.ad_group)
            add_mailboxes(r, a->ad_data.ad_group->grp_mb_list);
    }
}

/* An envelope header's value: one address, bare or in angle brackets. */
static void add_envelope(sb_rcpt_t *r, const char *value)
{
    size_t idx = 0;
    struct mailimf_address_list *al = NULL;
    if (mailimf_address_list_parse(value, strlen(value), &idx, &al) == MAILIMF_NO_ERROR) {
        add_list(r, al);
        mailimf_address_list_free(al);
    }
}

void sb_rcpt_parse(const char *raw, size_t n, sb_rcpt_t *out)
{
    out->addr = sb_calloc(SB_RCPT_MAX, sizeof(char *));
    out->n = 0;
    size_t idx = 0;
    struct mailimf_fields *f = NULL;
    if (mailimf_envelope_and_optional_fields_parse(raw, n, &idx, &f) != MAILIMF_NO_ERROR || !f)
        return;
    for (clistiter *it = clist_begin(f->fld_list); it; it = clist_next(it)) {
        struct mailimf_field *fld = clist_content(it);
        if (fld->fld_type == MAILIMF_FIELD_TO && fld->fld_data.fld_to)
            add_list(out, fld->fld_data.fld_to->to_addr_list);
        else if (fld->fld_type == MAILIMF_FIELD_CC && fld->fld_data.fld_cc)
            add_list(out, fld->fld_data.fld_cc->cc_addr_list);
        else if (fld->fld_type == MAILIMF_FIELD_OPTIONAL_FIELD &&
                 fld->fld_data.fld_optional_field) {
            const char *name = fld->fld_data.fld_optional_field->fld_name;
            const char *value = fld->fld_data.fld_optional_field->fld_value;
            if (name && value &&
                (strcasecmp(name, "Delivered-To") == 0 || strcasecmp(name, "X-Original-To") == 0 ||
                 strcasecmp(name, "Envelope-To") == 0))
                add_envelope(out, value);
        }
    }
    mailimf_fields_free(f);
}

void sb_rcpt_free(sb_rcpt_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        sb_free(r->addr[i]);
    sb_free(r->addr);
    r->addr = NULL;
    r->n = 0;
}
