/* SPDX-License-Identifier: MIT */
/*
 * The switchboard daemon: reads the configuration, starts the embedded Redis when no
 * `redis` is configured, connects (one connection for commands, one for the events
 * dispatcher's blocking XREAD), loads the function library, serves HTTP on the libuv
 * loop, and shuts down gracefully on SIGINT/SIGTERM.
 *
 *   switchboard [-c FILE]        run
 *   switchboard --check -c FILE  validate the configuration (exit 2 with file:line errors)
 *   switchboard --version
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla.h"
#include "core/sla_engine.h"
#include "core/util.h"
#include "gateway/app.h"
#include "gateway/version.h"
#include "gateway/waker.h"
#include "gateway/webhooks.h"

static sb_app_t app;
static uv_signal_t sig_int, sig_term;
static bool stopping;
/* The store is freed once Redis stopped and every connector freed its state. */
static bool redis_stopped, connectors_stopped;

static void usage(FILE *f)
{
    fprintf(f, "usage: switchboard [-c FILE] [--check] [--version] [--help-config]\n"
               "  -c, --config FILE  configuration file (key value lines; see\n"
               "                     deploy/switchboard.conf.example)\n"
               "      --check        validate the configuration and exit (2 on errors)\n"
               "      --help-config  list every configuration key\n"
               "      --version      print the version\n"
               "Every key can be overridden by the environment: SWITCHBOARD_<KEY>.\n");
}

/* ---- Redis connection hooks ---- */

static void on_redis_connect(sb_redis_t *r, void *data)
{
    sb_store_on_connect(app.store);
}

static void on_redis_disconnect(sb_redis_t *r, int err, void *data)
{
    if (app.store)
        sb_store_on_disconnect(app.store);
}

/*
 * ---- Shutdown: connectors, api -> http -> events -> redis -> (connectors done) store ->
 * embedded -> loop ends ----
 */

static void on_embedded_stopped(void *data)
{
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

static void maybe_free_store(void)
{
    if (!redis_stopped || !connectors_stopped)
        return;
    sb_store_free(app.store);
    app.store = NULL;
    if (app.embedded)
        sb_embedded_stop(app.embedded, on_embedded_stopped, NULL);
    else
        on_embedded_stopped(NULL);
}

static void on_redis_main_stopped(void *data)
{
    redis_stopped = true;
    maybe_free_store();
}

static void on_connectors_stopped(void *data)
{
    connectors_stopped = true;
    maybe_free_store();
}

static void on_redis_block_stopped(void *data)
{
    if (app.redis)
        sb_redis_stop(app.redis, on_redis_main_stopped, NULL);
    else
        on_redis_main_stopped(NULL);
}

static void on_http_stopped(void *data)
{
    sb_connector_host_free(app.connector_host);
    app.connector_host = NULL;
    sb_events_free(app.events);
    app.events = NULL;
    if (app.redis_block)
        sb_redis_stop(app.redis_block, on_redis_block_stopped, NULL);
    else
        on_redis_block_stopped(NULL);
}

static void shutdown_app(void)
{
    if (stopping)
        return;
    stopping = true;
    SB_LOG_INFO("shutdown", "phase=begin");
    sb_app_waker_stop();
    sb_webhooks_stop(app.webhooks); /* frees itself once its Redis replies are in */
    app.webhooks = NULL;
    sb_sla_engine_stop(app.sla_engine); /* likewise */
    app.sla_engine = NULL;
    sb_app_connectors_stop(&app, on_connectors_stopped, NULL);
    sb_api_free(app.api);
    app.api = NULL;
    sb_http_server_stop(app.http, on_http_stopped, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    SB_LOG_INFO("signal", "sig=%d", signum);
    shutdown_app();
}

/* ---- Start ---- */

static int start(void)
{
    sb_config_t *cfg = app.cfg;
    const char *url = cfg->redis;
    if (!url || !*url) {
        int rc = sb_embedded_start(app.loop, cfg->data_dir, cfg->redis_server, &app.embedded);
        if (rc) {
            SB_LOG_ERROR("embedded.start", "data_dir=%s err=%s", cfg->data_dir, sb_err_name(rc));
            return rc;
        }
        url = sb_embedded_url(app.embedded);
    }
    sb_redis_opts_t ro = {.url = url,
                          .name = "main",
                          .cmd_timeout_ms = cfg->redis_timeout_ms,
                          .start_grace_ms = app.embedded ? 10000 : 0, /* it is starting */
                          .on_connect = on_redis_connect,
                          .on_disconnect = on_redis_disconnect};
    int rc = sb_redis_new(app.loop, &ro, &app.redis);
    if (rc)
        return rc;
    sb_redis_opts_t bo = ro;
    bo.name = "events";
    bo.on_connect = NULL;
    bo.on_disconnect = NULL;
    if ((rc = sb_redis_new(app.loop, &bo, &app.redis_block)) != 0)
        return rc;
    sb_store_opts_t so = {.prefix = cfg->prefix,
                          .shards = cfg->shards,
                          .reopen_window_ms = cfg->reopen_window_ms,
                          .events_maxlen = cfg->events_maxlen,
                          .sla = sb_sla_conf_active(app.sla)};
    sb_store_new(app.redis, &so, &app.store);
    if (so.sla && (rc = sb_sla_engine_start(app.loop, app.store, app.sla, 0, &app.sla_engine)) != 0)
        return rc;
    if ((rc = sb_events_new(app.loop, app.redis_block, app.redis, cfg->prefix, cfg->shards,
                            &app.events)) != 0)
        return rc;
    sb_http_opts_t ho = {.loop = app.loop,
                         .listen = cfg->listen,
                         .tls_cert = cfg->tls_cert,
                         .tls_key = cfg->tls_key,
                         .max_outbound = (size_t)cfg->max_outbound_buffer};
    if ((rc = sb_http_server_new(&ho, &app.http)) != 0) {
        SB_LOG_ERROR("http.listen", "listen=%s err=%s", cfg->listen, sb_err_name(rc));
        return rc;
    }
    app.api = sb_api_new(&app);
    sb_app_waker_start(&app);
    if ((rc = sb_app_connectors_start(&app)) != 0)
        return rc;
    if ((rc = sb_webhooks_start(app.loop, cfg, app.redis, app.events, &app.webhooks)) != 0)
        return rc;
    SB_LOG_INFO("started", "version=%s listen=%s port=%d redis=%s public_url=%s", sb_version(),
                cfg->listen, sb_http_server_port(app.http), app.embedded ? "embedded" : url,
                cfg->public_url);
    SB_LOG_INFO("ready", "console=%s/console/ demo=%s%s", cfg->public_url,
                cfg->demo_page ? cfg->public_url : "off", cfg->demo_page ? "/" : "");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},      {"help-config", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    sb_alloc_init(); /* before any jansson call */
    const char *path = NULL;
    bool check = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'V':
            printf("switchboard %s\n", sb_version());
            return 0;
        case 'K': {
            sb_buf_t b;
            sb_buf_init(&b, 1 << 20);
            sb_config_print_keys(&b, sb_connectors_config());
            fwrite(b.data ? b.data : "", 1, b.len, stdout);
            sb_buf_dispose(&b);
            return 0;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }

    sb_config_t cfg;
    sb_buf_t errors;
    sb_buf_init(&errors, 64 * 1024);
    int rc = sb_config_load_with(&cfg, path, sb_connectors_config(), &errors);
    sb_sla_conf_t *sla = NULL;
    if (rc == 0 && sb_sla_conf_load(&cfg, &sla, &errors) != 0)
        rc = SB_ECONFIG; /* SLA lines are compiled here so that --check reports them */
    if (rc != 0 || check) {
        if (errors.len)
            fputs(errors.data, stderr);
        if (rc == 0)
            printf("%s: ok\n", path ? path : "(defaults)");
        sb_sla_conf_free(sla);
        sb_buf_dispose(&errors);
        sb_config_dispose(&cfg);
        return rc == 0 ? 0 : 2;
    }
    sb_buf_dispose(&errors);
    sb_log_setup(cfg.log_level, cfg.log_format);
    signal(SIGPIPE, SIG_IGN);

    app.cfg = &cfg;
    app.sla = sla; /* the policies and calendars, for the connectors and the API */
    app.loop = uv_default_loop();
    app.started_ms = sb_now_ms();
    uv_signal_init(app.loop, &sig_int);
    uv_signal_init(app.loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);

    int exit_code = 0;
    if (start() != 0) {
        exit_code = 1;
        if (app.http) {
            shutdown_app();
        } else {
            /* Partial start: tear down what exists (no connector started). */
            stopping = true;
            connectors_stopped = true;
            sb_api_free(app.api);
            on_http_stopped(NULL);
        }
    }
    uv_run(app.loop, UV_RUN_DEFAULT);
    /* lws on a foreign loop: a second pass lets its last handles close (docs/libraries.md). */
    uv_run(app.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(app.loop) != 0)
        SB_LOG_WARN("shutdown", "loop=busy");
    SB_LOG_INFO("shutdown", "phase=done");
    sb_sla_conf_free(app.sla);
    sb_config_dispose(&cfg);
    return exit_code;
}
