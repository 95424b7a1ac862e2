/* SPDX-License-Identifier: MIT */
/*
 * Shared inside connectors/webchat only: the connector's state, a visitor socket, the
 * per-socket and per-address rate limits, and the functions the files of the folder
 * call in each other:
 *   webchat.c  lifecycle, sockets, limits, sites
 *   wait.c     the honest wait: its refresh timer and the status frames when it changes
 *   hello.c    hello/welcome: visitor tokens, verified users, the first history page
 *   frames.c   the visitor's frames after the welcome: message, email, typing, history
 *   deliver.c  frames to visitors: sends, conversation routing, the events subscription
 */
#ifndef SB_WEBCHAT_INTERNAL_H
#define SB_WEBCHAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "connectors/connector.h"
#include "core/map.h"
#include "core/msg.h"
#include "core/util.h"
#include "core/wait.h"

#define SB__WC_CHANNEL       "webchat"
#define SB__WC_PAGE          50           /* messages in the welcome and per history page */
#define SB__WC_PAGE_BYTES    (384 * 1024) /* about this much JSON at most per page */
#define SB__WC_CLIENT_ID_MAX 128          /* printable ASCII */

typedef struct site {
    char *id;
    char *secret;
    char **origins; /* allowed Origin values; "*" allows any */
    int norigins;
} site_t;

/* A token bucket: `burst` tokens, refilled at `per_s` per second. */
typedef struct bucket {
    double tokens;
    uint64_t at_ms;
} bucket_t;

/* What is counted: each visitor socket and each address (sb_ip_key) has one of each. */
enum wc_limit {
    WC_MESSAGE,
    WC_HELLO,
    WC_TYPING,
    WC_EMAIL,
    WC_HISTORY,
    WC_OTHER, /* ping, unknown types, unparsable frames */
    WC_NLIMITS
};

/* The buckets of one address; freed by the sweep once no socket counts under it. */
typedef struct ip_state {
    bucket_t b[WC_NLIMITS];
    unsigned live; /* visitor sockets open from this address */
    uint64_t at_ms;
} ip_state_t;

typedef struct webchat webchat_t;
typedef struct visitor visitor_t;

typedef struct held {
    char *text;
    char seq[48];
} held_t;

enum vstate { V_NEW, V_HELLO, V_READY };

struct visitor {
    webchat_t *wc;
    sb_host_ws_t *ws; /* NULL once closed */
    int busy;         /* store operations in flight; the visitor is freed when 0 and closed */
    enum vstate state;
    const site_t *site;
    char token_hash[65];
    char contact[SB_ID_MAX]; /* "" until the first message or email (anonymous visitors) */
    char conv[SB_ID_MAX];
    char name[128];
    char *email; /* the hello's email (or NULL), stored when the contact is created */
    char ip[64];
    ip_state_t *ipst;  /* the address's buckets (counted in ipst->live) */
    char *last_seq;    /* the hello's last_seq */
    char sent_seq[48]; /* newest transcript seq this socket has been sent */
    held_t *held;      /* message frames that arrived before the welcome */
    size_t nheld;
    bool verified;
    bool history_busy;                       /* a history page is being read */
    bool creating;                           /* the anonymous visitor's contact is being created */
    struct send_ctx *waiting, *waiting_tail; /* messages waiting for that contact, in order */
    bucket_t b[WC_NLIMITS];
    visitor_t *conv_next; /* sockets of the same conversation */
    visitor_t *all_prev, *all_next;
};

struct webchat {
    sb_connector_env_t env; /* env.host: the WebSocket ops (connectors/connector.h) */
    uint64_t visitor_rate;  /* the config's, per minute (per socket, per address) */
    uint64_t visitor_ip_rate;
    site_t *sites;
    int nsites;
    sb_map_t by_conv; /* conv id -> visitor list */
    sb_map_t by_ip;   /* sb_ip_key -> ip_state_t */
    visitor_t *all;
    size_t nvisitors;
    unsigned pending; /* connector-level store calls in flight (wait estimate) */
    uint64_t limited; /* frames refused or dropped by a rate limit (for /metrics) */
    sb_events_sub_t *sub;
    uv_timer_t *timer;
    const sb_calendar_t *cal; /* the webchat policy's calendar (NULL: always open) */
    sb_wait_in_t wait_in;     /* the figures of the last refresh (now_ms unused) */
    sb_wait_t wait;           /* what the visitors were last told */
    bool refreshing;          /* a refresh's store call is in flight */
    bool refresh_again;       /* and another was asked for meanwhile */
    uint64_t last_sweep;
    bool stopping; /* freed when the last visitor and the last store call are done */
    sb_connector_stopped_cb stopped; /* then runs stopped(stopped_data) */
    void *stopped_data;
};

/* ---- webchat.c ---- */

/** The loop's time in ms. */
uint64_t sb__webchat_now(const webchat_t *wc);
/**
 * Takes one token of limit `which` from the socket's and the address's buckets. True if
 * allowed; else false and *retry_ms says when the next token comes.
 */
bool sb__webchat_take(visitor_t *v, enum wc_limit which, uint64_t *retry_ms);
/** Frees a closed visitor (and the connector, if it is stopping and this was the last). */
void sb__webchat_visitor_free(visitor_t *v);
/** Called first in every visitor store callback: false (and v freed) if the socket is gone. */
bool sb__webchat_alive(visitor_t *v);

/* ---- wait.c ---- */

/** Starts the refresh (the first one now); the timer is wc->timer. */
void sb__webchat_wait_start(webchat_t *wc);
/** Reads the figures again now (presence changed); one read in flight at a time. */
void sb__webchat_wait_refresh(webchat_t *wc);
/** The estimate at this moment from the last refresh's figures. */
void sb__webchat_wait_now(const webchat_t *wc, sb_wait_t *out);
/** Sets expected_reply_ms, online, open and back_at of the estimate now in a frame. */
void sb__webchat_wait_json(const webchat_t *wc, json_t *frame);
/** Frees wc if it is stopping and nothing is left (webchat.c). */
void sb__webchat_maybe_free(webchat_t *wc);
/** Forgets idle addresses' buckets once a sweep period (webchat.c; on the refresh timer). */
void sb__webchat_sweep(webchat_t *wc, uint64_t now);

/* ---- hello.c ---- */

/** A hello frame: identifies the visitor, then sends the welcome. */
void sb__webchat_on_hello(visitor_t *v, json_t *f);

/* ---- frames.c ---- */

/** A text frame from a visitor. */
void sb__webchat_on_text(sb_host_ws_t *ws, const char *msg, size_t len, void *data);
/** Frees the messages a closed visitor still had waiting for its contact. */
void sb__webchat_drop_waiting(visitor_t *v);
/** Whether s is a seq ("ms-n", digits and one dash) of sane length. */
bool sb__webchat_seq_ok(const char *s);

/* ---- deliver.c ---- */

/** Sends a JSON frame (closes the socket with 1008 if its queue is full). */
void sb__webchat_send_json(visitor_t *v, json_t *j);
/** Sends {"type":"error",…}; client_id (may be NULL) and retry_ms (0 = none) if given. */
void sb__webchat_send_error(visitor_t *v, const char *code, const char *msg, const char *client_id,
                            uint64_t retry_ms);
/** Records that this socket was sent the transcript up to seq. */
void sb__webchat_note_sent(visitor_t *v, const char *seq);
/** Sends a transcript frame unless already sent; held until the welcome. */
void sb__webchat_send_message_text(visitor_t *v, const char *text, size_t len, const char *seq);
void sb__webchat_drop_held(visitor_t *v);
/** Routes the conversation's events to v. */
void sb__webchat_attach(visitor_t *v, const char *conv);
void sb__webchat_detach(visitor_t *v);
/**
 * v's contact has a new conversation: the contact's other sockets (and those of the same
 * anonymous token) join it and get `frame`, the message that started it.
 */
void sb__webchat_attach_contact(visitor_t *v, const char *conv, json_t *frame);
/** The events subscription's callback. */
void sb__webchat_on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data);

#endif
