/* SPDX-License-Identifier: MIT */
/*
 * The sending thread of smtp.h. A core/worker.h worker whose body runs a libuv loop of its
 * own with one HTTP client on it: mails reach it through a locked queue and a uv_async_t
 * on that loop; results come back through sb_worker_post to the caller's loop, where each
 * mail's callback runs. Stop sets a flag and wakes the thread, which stops its client (in
 * flight: completed as canceled), closes its handles and returns; the worker then joins
 * it and delivers what it posted before reporting stopped.
 */
#include "connectors/email/smtp.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/worker.h"

typedef struct job job_t;
struct job {
    job_t *next;
    sb_email_smtp_t *s;
    sb_httpc_mail_t mail; /* its strings are the copies below */
    char *url, *username, *password, *ca_file, *helo, *mail_from, *message;
    char **rcpt;
    sb_httpc_cb cb;
    void *data;
    /* The answer, filled on the thread. */
    int status;
    long code;
    sb_httpc_cause_t cause;
    char *error, *reply;
};

struct sb_email_smtp {
    uv_loop_t *loop; /* the caller's */
    sb_worker_t *worker;
    unsigned inflight;  /* caller's loop only */
    bool stopping;      /* caller's loop only */
    uv_loop_t tloop;    /* the thread's */
    uv_async_t wake;    /* on tloop: jobs queued or stop asked */
    sb_httpc_t *httpc;  /* on tloop */
    sb_worker_t *tself; /* the worker, as the thread knows it */
    pthread_mutex_t mu;
    job_t *head, *tail; /* under mu */
    bool stop;          /* under mu */
    void (*stop_cb)(void *);
    void *stop_data;
};

static char *dup_or_null(const char *s)
{
    return s ? sb_strdup(s) : NULL;
}

static void job_free(job_t *j)
{
    sb_free(j->url);
    sb_free(j->username);
    sb_free(j->password);
    sb_free(j->ca_file);
    sb_free(j->helo);
    sb_free(j->mail_from);
    sb_free(j->message);
    for (size_t i = 0; j->rcpt && j->rcpt[i]; i++)
        sb_free(j->rcpt[i]);
    sb_free(j->rcpt);
    sb_free(j->error);
    sb_free(j->reply);
    sb_free(j);
}

/* ---- The thread ---- */

static void on_sent(const sb_httpc_response_t *res, void *data)
{
    job_t *j = data;
    j->status = res->status;
    j->code = res->code;
    j->cause = res->cause;
    j->error = sb_strdup(res->error ? res->error : "");
    j->reply = sb_strdup(res->reply ? res->reply : "");
    sb_worker_post(j->s->tself, j);
}

static void on_httpc_stopped(void *data)
{
    sb_email_smtp_t *s = data;
    uv_close((uv_handle_t *)&s->wake, NULL); /* the last handle: uv_run returns */
}

static void on_wake(uv_async_t *a)
{
    sb_email_smtp_t *s = a->data;
    pthread_mutex_lock(&s->mu);
    job_t *j = s->head;
    s->head = s->tail = NULL;
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    while (j) {
        job_t *next = j->next;
        int rc = sb_httpc_send_mail(s->httpc, &j->mail, on_sent, j, NULL);
        if (rc != 0) { /* checked before it was queued: only SB_EINTERNAL is left */
            sb_httpc_response_t res = {
                .status = rc, .error = sb_strerror(rc), .body = "", .headers = "", .reply = ""};
            on_sent(&res, j);
        }
        j = next;
    }
    if (stop && !uv_is_closing((uv_handle_t *)&s->wake) && s->httpc) {
        sb_httpc_t *h = s->httpc;
        s->httpc = NULL;
        sb_httpc_stop(h, on_httpc_stopped, s); /* in flight: on_sent with SB_ECANCELED */
    }
}

static void run(sb_worker_t *w, void *data)
{
    sb_email_smtp_t *s = data;
    s->tself = w;
    uv_run(&s->tloop, UV_RUN_DEFAULT);
}

/* ---- The caller's loop ---- */

static void on_result(sb_worker_t *w, void *result, void *data)
{
    sb_email_smtp_t *s = data;
    job_t *j = result;
    sb_httpc_response_t res = {.status = j->status,
                               .error = j->error,
                               .code = j->code,
                               .body = "",
                               .headers = "",
                               .cause = j->cause,
                               .reply = j->reply};
    s->inflight--;
    j->cb(&res, j->data);
    job_free(j);
}

int sb_email_smtp_start(uv_loop_t *loop, sb_email_smtp_t **out)
{
    sb_email_smtp_t *s = SB_NEW(sb_email_smtp_t);
    s->loop = loop;
    pthread_mutex_init(&s->mu, NULL);
    uv_loop_init(&s->tloop);
    uv_async_init(&s->tloop, &s->wake, on_wake);
    s->wake.data = s;
    sb_httpc_new(&s->tloop, "Switchboard", &s->httpc);
    sb_httpc_limit_host(s->httpc, SB_EMAIL_SMTP_CONNECTIONS);
    sb_worker_ops_t ops = {.run = run, .on_result = on_result};
    if (sb_worker_start(loop, &ops, s, &s->worker) != 0) {
        uv_close((uv_handle_t *)&s->wake, NULL);
        sb_httpc_stop(s->httpc, NULL, NULL);
        uv_run(&s->tloop, UV_RUN_DEFAULT);
        uv_loop_close(&s->tloop);
        pthread_mutex_destroy(&s->mu);
        sb_free(s);
        return SB_EINTERNAL;
    }
    *out = s;
    return 0;
}

int sb_email_smtp_send(sb_email_smtp_t *s, const sb_httpc_mail_t *m, sb_httpc_cb cb, void *data)
{
    if (s->stopping)
        return SB_ECANCELED;
    if (sb_httpc_mail_check(m) != 0)
        return SB_EINVAL;
    job_t *j = SB_NEW(job_t);
    j->s = s;
    j->cb = cb;
    j->data = data;
    j->mail = *m;
    j->mail.url = j->url = sb_strdup(m->url);
    j->mail.username = j->username = dup_or_null(m->username);
    j->mail.password = j->password = dup_or_null(m->password);
    j->mail.ca_file = j->ca_file = dup_or_null(m->ca_file);
    j->mail.helo = j->helo = dup_or_null(m->helo);
    j->mail.mail_from = j->mail_from = sb_strdup(m->mail_from);
    j->mail.message = j->message = sb_malloc(m->message_len);
    memcpy(j->message, m->message, m->message_len);
    size_t n = 0;
    while (m->rcpt[n])
        n++;
    j->rcpt = sb_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        j->rcpt[i] = sb_strdup(m->rcpt[i]);
    j->mail.rcpt = (const char *const *)j->rcpt;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    pthread_mutex_unlock(&s->mu);
    s->inflight++;
    uv_async_send(&s->wake);
    return 0;
}

unsigned sb_email_smtp_inflight(const sb_email_smtp_t *s)
{
    return s ? s->inflight : 0;
}

static void on_worker_stopped(void *data)
{
    sb_email_smtp_t *s = data;
    void (*cb)(void *) = s->stop_cb;
    void *cb_data = s->stop_data;
    uv_loop_close(&s->tloop); /* the thread is joined: its loop is ours now, and empty */
    pthread_mutex_destroy(&s->mu);
    sb_free(s);
    if (cb)
        cb(cb_data);
}

void sb_email_smtp_stop(sb_email_smtp_t *s, void (*cb)(void *data), void *data)
{
    if (!s) {
        if (cb)
            cb(data);
        return;
    }
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_cb = cb;
    s->stop_data = data;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
    sb_worker_stop(s->worker, on_worker_stopped, s);
}
