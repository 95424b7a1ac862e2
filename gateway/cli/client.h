/* SPDX-License-Identifier: MIT */
/*
 * sbctl's HTTP client commands (queue, show, reply, note, claim, release, assign, resolve, tail,
 * stats, connectors): blocking libcurl easy requests against SWITCHBOARD_URL with a bearer
 * token. Exit codes are shared with the administration commands in sbctl.c.
 */
#ifndef SB_CLI_CLIENT_H
#define SB_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

enum {
    SBC_OK = 0,
    SBC_FAIL = 1,
    SBC_USAGE = 2,
    SBC_UNREACHABLE = 3,
    SBC_CONFLICT = 4,
    SBC_NOT_FOUND = 5,
    SBC_DENIED = 6
};

typedef struct sbc_opts {
    const char *url;      /* base URL, no trailing slash needed */
    const char *token;    /* bearer token */
    const char *after;    /* tail: resume cursor */
    const char *based_on; /* reply: explicit based_on (else the conversation's last_seq) */
    bool json;            /* print the API's JSON as is */
    bool force;           /* reply: send with force */
    bool steal;           /* claim: steal (admins) */
    bool none;            /* assign: to nobody (--none) */
    const char *from;     /* report: ms, "now" or a time ago ("7d") */
    const char *to;       /* report: likewise */
    const char *channel;  /* report: one channel */
} sbc_opts_t;

/** True if `cmd` is one of the HTTP client commands. */
bool sbc_is_command(const char *cmd);

/** Runs the client command words[0] with arguments words[1..n-1]; returns an exit code. */
int sbc_run(const sbc_opts_t *o, int n, char **words);

/**
 * GET path: on SBC_OK *out is the parsed JSON answer (a new reference), else NULL and the
 * error was printed; returns an exit code.
 */
int sbc_get_json(const sbc_opts_t *o, const char *path, json_t **out);

/**
 * A request with an optional JSON body: on SBC_OK (a 2xx) *out is the parsed answer (an
 * empty object for 204), else NULL and the error was printed; returns an exit code.
 */
int sbc_call_json(const sbc_opts_t *o, const char *method, const char *path, json_t *body,
                  json_t **out);

/** All of stdin as a new string (sb_free), trailing newlines removed. */
char *sbc_read_stdin(void);
/** Prints JSON as --json does (ASCII-only on a terminal). */
void sbc_print_json(json_t *j);
/** Server text made safe for one terminal line (core/term.h): a new string (sb_free). */
char *sbc_safe(const char *s);

/* ---- canned.c ---- */

/** canned add SHORTCUT TITLE [TEXT|-] | list | remove SHORTCUT (words after "canned"). */
int sbc_canned(const sbc_opts_t *o, int n, char **words);

/* ---- report.c ---- */

/** report: GET /v1/reports over o->from..o->to (o->channel) printed as tables. */
int sbc_report(const sbc_opts_t *o);

/** Prints GET /v1/stats as indented lines, durations as a person reads them ("4m 12s"). */
void sbc_print_stats(json_t *stats);

#endif
