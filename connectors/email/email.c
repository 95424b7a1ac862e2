/* SPDX-License-Identifier: MIT */
/*
 * The email connector (docs/email.md): every `mailbox` row is one IMAP session on its own
 * worker thread (imap.c) feeding the store in UID order (inbound.c), and answers leave
 * through the email outbox as SMTP mail composed as replies in the customer's thread
 * (outbound.c). This file reads the configuration, starts and stops, and counts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connectors/email/internal.h"
#include "connectors/email/state.h"
#include "core/alloc.h"
#include "core/attach.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"

/* Bytes of a password file kept (a password is one line). */
#define PASSWORD_MAX 1024

static bool url_is(const char *url, const char *const *schemes)
{
    for (size_t i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(url, schemes[i], n) == 0 && url[n])
            return true;
    }
    return false;
}

static bool check_mailbox(int argc, char *const *argv, char *why, size_t cap)
{
    static const char *const imap[] = {"imaps://", "imap://", NULL};
    static const char *const smtp[] = {"smtps://", "smtp://", NULL};
    if (argc != 4) {
        snprintf(why, cap, "expected <name> <imap-url> <smtp-url> <address>");
        return false;
    }
    for (const char *p = argv[0]; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            snprintf(why, cap, "name '%s': letters, digits, '-' and '_' only", argv[0]);
            return false;
        }
    if (strlen(argv[0]) > 64) {
        snprintf(why, cap, "name longer than 64 characters");
        return false;
    }
    if (!url_is(argv[1], imap)) {
        snprintf(why, cap, "'%s' is not an imaps:// or imap:// URL", argv[1]);
        return false;
    }
    if (!url_is(argv[2], smtp)) {
        snprintf(why, cap, "'%s' is not an smtps:// or smtp:// URL", argv[2]);
        return false;
    }
    if (sb_email_check(argv[3]) != 0) {
        snprintf(why, cap, "'%s' is not an address (local@domain)", argv[3]);
        return false;
    }
    return true;
}

static bool check_password_file(int argc, char *const *argv, char *why, size_t cap)
{
    (void)argv;
    if (argc != 2) {
        snprintf(why, cap, "expected <mailbox-name> <path>");
        return false;
    }
    return true;
}

/* Takes user:password out of an smtp(s) URL: b->smtp_bare is the URL without them. false
 * when a %XX in them is broken. */
static bool split_smtp_url(em_box_t *b)
{
    const char *u = b->smtp_url, *host = strstr(u, "://") + 3;
    const char *end = host + strcspn(host, "/?#"), *at = NULL;
    for (const char *p = host; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at) {
        b->smtp_bare = sb_strdup(u);
        return true;
    }
    const char *colon = memchr(host, ':', (size_t)(at - host));
    b->smtp_user = sb__email_pct_decode(host, (size_t)((colon ? colon : at) - host));
    if (colon)
        b->smtp_pass = sb__email_pct_decode(colon + 1, (size_t)(at - colon - 1));
    b->smtp_bare = sb_asprintf("%.*s%s", (int)(host - u), u, at + 1);
    return b->smtp_user && (!colon || b->smtp_pass);
}

static int read_password(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        SB_LOG_ERROR("email.config", "password_file=%s err=%s", path, strerror(errno));
        return SB_ECONFIG;
    }
    char buf[PASSWORD_MAX];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    *out = sb_strdup(buf);
    return 0;
}

/*
 * The key that signs staff reply addresses: mailbox_reply_secret, else one derived from
 * the node key the attachments already keep (attachment_secret, or the key file under
 * data_dir: core/attach.h), so nodes that share it agree without another file.
 */
static int load_secret(em_t *em, const sb_config_t *cfg)
{
    const char *s = sb_config_str(cfg, "mailbox_reply_secret");
    if (s && *s) {
        em->secret_len = strlen(s) < sizeof(em->secret) ? strlen(s) : sizeof(em->secret);
        memcpy(em->secret, s, em->secret_len);
        return 0;
    }
    sb_attach_key_t node;
    int rc = sb_attach_key_load(&node, em->data_dir, cfg->attachment_secret);
    if (rc)
        return SB_ECONFIG;
    static const char label[] = "sb-email-reply-v1";
    sb_hmac_sha256(node.bytes, sizeof(node.bytes), label, sizeof(label) - 1, em->secret);
    em->secret_len = 32;
    return 0;
}

static void box_dispose(em_box_t *b)
{
    sb__em_in_dispose(b);
    sb_free(b->name);
    sb_free(b->imap_url);
    sb_free(b->smtp_url);
    sb_free(b->address);
    sb_free(b->password);
    sb_free(b->smtp_user);
    sb_free(b->smtp_pass);
    sb_free(b->smtp_bare);
    sb_free(b->domain);
}

static void em_free(em_t *em)
{
    for (size_t i = 0; i < em->nboxes; i++)
        box_dispose(&em->boxes[i]);
    sb_free(em->boxes);
    sb__em_notify_dispose(em);
    sb_free(em->tls_ca);
    sb_free(em->data_dir);
    sb_free(em->notify_from);
    sb_free(em->public_url);
    sb_connector_stopped_cb done = em->stopped;
    void *data = em->stopped_data;
    sb_free(em);
    if (done)
        done(data);
}

void sb__em_maybe_free(em_t *em)
{
    if (em->stopping && em->pending == 0 && em->imap_running == 0 && em->timers == 0 && !em->smtp)
        em_free(em);
}

void sb__em_unref(em_t *em)
{
    em->pending--;
    sb__em_maybe_free(em);
}

em_box_t *sb__em_box(em_t *em, const char *name)
{
    for (size_t i = 0; name && i < em->nboxes; i++)
        if (strcmp(em->boxes[i].name, name) == 0)
            return &em->boxes[i];
    return em->nboxes ? &em->boxes[0] : NULL;
}

void sb__em_tag(const char *cid, char *out)
{
    size_t n = strlen(cid);
    const char *p = n > SB__EM_TAG_LEN ? cid + n - SB__EM_TAG_LEN : cid;
    snprintf(out, SB__EM_TAG_LEN + 1, "%s", p);
}

static int configure(em_t *em, const sb_config_t *cfg)
{
    const sb_config_list_t *rows = sb_config_list(cfg, "mailbox");
    const sb_config_list_t *pw = sb_config_list(cfg, "mailbox_password_file");
    em->boxes = sb_calloc(rows->n, sizeof(em_box_t));
    for (size_t i = 0; i < rows->n; i++) {
        char *const *w = rows->items[i].argv;
        em_box_t *b = &em->boxes[em->nboxes++];
        b->em = em;
        b->name = sb_strdup(w[0]);
        b->imap_url = sb_strdup(w[1]);
        b->smtp_url = sb_strdup(w[2]);
        b->address = sb_strdup(w[3]);
        b->domain = sb_strdup(strrchr(w[3], '@') + 1);
        if (!split_smtp_url(b)) {
            SB_LOG_ERROR("email.config",
                         "mailbox=%s err=\"a broken %%XX in the SMTP URL's user "
                         "or password\"",
                         b->name);
            return SB_ECONFIG;
        }
        for (size_t j = 0; j < em->nboxes - 1; j++)
            if (strcmp(em->boxes[j].name, b->name) == 0) {
                SB_LOG_ERROR("email.config", "mailbox=%s err=\"named twice\"", b->name);
                return SB_ECONFIG;
            }
    }
    for (size_t i = 0; i < pw->n; i++) {
        char *const *w = pw->items[i].argv;
        em_box_t *b = NULL;
        for (size_t j = 0; j < em->nboxes; j++)
            if (strcmp(em->boxes[j].name, w[0]) == 0)
                b = &em->boxes[j];
        if (!b) {
            SB_LOG_ERROR("email.config", "mailbox_password_file=%s err=\"no such mailbox\"", w[0]);
            return SB_ECONFIG;
        }
        sb_free(b->password);
        b->password = NULL;
        int rc = read_password(w[1], &b->password);
        if (rc)
            return rc;
        sb_free(b->smtp_pass);
        b->smtp_pass = sb_strdup(b->password);
    }
    const char *ca = sb_config_str(cfg, "mailbox_tls_ca");
    em->tls_ca = ca && *ca ? sb_strdup(ca) : NULL;
    em->data_dir = sb_strdup(cfg->data_dir ? cfg->data_dir : "./var");
    em->attach_max = cfg->attachment_max_bytes;
    /* notify_from may be "Name <address>" or a bare address */
    const char *nf = cfg->notify_from, *lt = nf ? strchr(nf, '<') : NULL;
    if (lt && strchr(lt, '>'))
        em->notify_from = sb_strndup(lt + 1, (size_t)(strchr(lt, '>') - lt - 1));
    else if (nf && *nf)
        em->notify_from = sb_strdup(nf);
    if (em->notify_from && sb_email_check(em->notify_from) != 0) {
        SB_LOG_ERROR("email.config", "notify_from=\"%s\" err=\"not an address\"", nf);
        return SB_ECONFIG;
    }
    em->public_url = sb_strdup(cfg->public_url ? cfg->public_url : "");
    em->followup_after_ms = sb_config_uint(cfg, "webchat_email_after");
    return load_secret(em, cfg);
}

static void on_smtp_stopped(void *data)
{
    em_t *em = data;
    em->smtp = NULL;
    sb__em_maybe_free(em);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data);

static int start(const sb_connector_env_t *env, void **state)
{
    *state = NULL;
    if (sb_config_list(env->cfg, "mailbox")->n == 0)
        return 0;
    em_t *em = SB_NEW(em_t);
    em->env = *env;
    int rc = configure(em, env->cfg);
    if (!rc)
        rc = sb_email_smtp_start(env->loop, &em->smtp);
    for (size_t i = 0; !rc && i < em->nboxes; i++)
        rc = sb__em_in_start(&em->boxes[i]);
    if (!rc)
        rc = sb__em_notify_start(em);
    if (!rc)
        rc = sb__em_followup_start(em);
    if (rc) {
        SB_LOG_ERROR("email.start", "err=%s", sb_err_name(rc));
        em->stopping = true; /* freed once what started has stopped */
        stop(em, NULL, NULL);
        return rc;
    }
    SB_LOG_INFO("email.start", "mailboxes=%zu", em->nboxes);
    *state = em;
    return 0;
}

static void on_imap_stopped(void *data)
{
    em_box_t *b = data;
    b->imap = NULL;
    b->em->imap_running--;
    sb__em_maybe_free(b->em);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    em_t *em = state;
    if (!em) {
        if (done)
            done(data);
        return;
    }
    em->stopping = true;
    em->stopped = done;
    em->stopped_data = data;
    em->pending++; /* hold: the callbacks below may run at once */
    sb__em_notify_stop(em);
    sb__em_followup_stop(em);
    for (size_t i = 0; i < em->nboxes; i++) {
        em_box_t *b = &em->boxes[i];
        sb__em_in_close(b);
        if (b->imap)
            sb_imap_stop(b->imap, on_imap_stopped, b);
    }
    if (em->smtp)
        sb_email_smtp_stop(em->smtp, on_smtp_stopped, em);
    sb__em_unref(em);
}

static void metrics(void *state, sb_buf_t *out)
{
    em_t *em = state;
    uint64_t t[6] = {0};
    size_t idle = 0;
    for (size_t i = 0; i < em->nboxes; i++) {
        em_box_t *b = &em->boxes[i];
        idle += b->imap && (b->status == SB_IMAP_IDLING || b->status == SB_IMAP_POLLING);
        t[0] += b->received, t[1] += b->stored, t[2] += b->duplicates;
        t[3] += b->automatic, t[4] += b->bounces, t[5] += b->rejected;
    }
    sb_buf_printf(out,
                  "# TYPE switchboard_email_mailboxes gauge\nswitchboard_email_mailboxes %zu\n"
                  "# TYPE switchboard_email_mailboxes_idle gauge\n"
                  "switchboard_email_mailboxes_idle %zu\n"
                  "# TYPE switchboard_email_received_total counter\n"
                  "switchboard_email_received_total %llu\n"
                  "# TYPE switchboard_email_stored_total counter\n"
                  "switchboard_email_stored_total %llu\n"
                  "# TYPE switchboard_email_duplicates_total counter\n"
                  "switchboard_email_duplicates_total %llu\n"
                  "# TYPE switchboard_email_automatic_total counter\n"
                  "switchboard_email_automatic_total %llu\n"
                  "# TYPE switchboard_email_bounces_total counter\n"
                  "switchboard_email_bounces_total %llu\n"
                  "# TYPE switchboard_email_rejected_total counter\n"
                  "switchboard_email_rejected_total %llu\n"
                  "# TYPE switchboard_email_sent_total counter\nswitchboard_email_sent_total %llu\n"
                  "# TYPE switchboard_email_send_failed_total counter\n"
                  "switchboard_email_send_failed_total %llu\n",
                  em->nboxes, idle, (unsigned long long)t[0], (unsigned long long)t[1],
                  (unsigned long long)t[2], (unsigned long long)t[3], (unsigned long long)t[4],
                  (unsigned long long)t[5], (unsigned long long)em->sent,
                  (unsigned long long)em->send_failed);
}

static const sb_config_key_t config_keys[] = {
    {"mailbox", SB_CONFIG_LIST, NULL, 4, 0, "<name> <imap-url> <smtp-url> <address>",
     "A mailbox read over IMAP IDLE (imaps://user:pass@host/FOLDER, or imap:// with STARTTLS) "
     "and answered over SMTP (smtps:// or smtp:// with STARTTLS) from <address>.",
     check_mailbox},
    {"mailbox_password_file", SB_CONFIG_LIST, NULL, 2, 0, "<mailbox-name> <path>",
     "The mailbox's password (IMAP and SMTP), read from the first line of a file instead of "
     "the URLs.",
     check_password_file},
    {"mailbox_reply_secret", SB_CONFIG_STRING, NULL, 16, 0, "<secret>",
     "Signs staff reply addresses (at least 16 characters); unset: derived from the "
     "attachments' node key (attachment_secret or <data_dir>/attachment.key).",
     NULL},
    {"webchat_email_after", SB_CONFIG_DURATION, "2m", 0, 7 * 24 * 3600 * 1000ULL, "<duration>",
     "A staff answer in a web chat the visitor has not seen after this long goes to the "
     "address they left, by mail (their answer by mail continues the chat).",
     NULL},
    {"mailbox_tls_ca", SB_CONFIG_STRING, NULL, 0, 0, "<pem-file>",
     "CA certificates trusted for the mail servers (a private CA); unset: the system's.", NULL},
    {NULL},
};

const sb_connector_desc_t sb_connector_email = {
    .name = "email",
    .channel = SB__EM_CHANNEL,
    .config = config_keys,
    .start = start,
    .stop = stop,
    .deliver = sb__em_deliver,
    .metrics = metrics,
};
