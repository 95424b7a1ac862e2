/* SPDX-License-Identifier: MIT */
/*
 * Business-hours calendars for SLA clocks (docs/sla.md). A calendar is a time zone from
 * the system zoneinfo (core/tz.h), weekly open periods and holiday dates:
 *
 *     calendar <name> <IANA-zone> <days> <HH:MM-HH:MM>[,<HH:MM-HH:MM>…] [<days> <ranges>…]
 *     holiday <calendar> <YYYY-MM-DD>…
 *
 * <days> is a day (mon…sun), a range (mon-fri, fri-mon wraps) or a comma list (mon,wed).
 * A period whose end is not after its start crosses midnight (22:00-06:00) and belongs to
 * the day it starts on; 24:00 is allowed as an end. An instant is open when its local
 * wall time on some local date D lies in one of D's periods and D is not a holiday (a
 * holiday closes the periods that start on it). Local times a DST change skips are open
 * nowhere; a repeated hour is open twice. All times are ms since the epoch (UTC).
 * Overlapping or repeated periods are merged (their union is open), not refused.
 * A calendar is read-only once its holidays are added: any thread may query it.
 */
#ifndef SB_CALENDAR_H
#define SB_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct sb_calendar sb_calendar_t;

/** "Never": what sb_calendar_add answers when no open time is found within 10 years. */
#define SB_CALENDAR_NEVER INT64_MAX

/**
 * Parses a calendar line's words after the key (argv[0] = name, argv[1] = zone, then
 * <days> <ranges> pairs), loading the zone from the system zoneinfo ($TZDIR or
 * /usr/share/zoneinfo). 0, or SB_EINVAL with a one-line reason in err ("unknown time zone
 * Europe/Berln", "bad range 25:00-26:00", "no open time") and *out NULL.
 */
int sb_calendar_parse(int argc, char *const *argv, sb_calendar_t **out, char *err, size_t errlen);

/** Adds holiday dates (YYYY-MM-DD words); 0, or SB_EINVAL with the reason in err. */
int sb_calendar_add_holidays(sb_calendar_t *cal, int argc, char *const *argv, char *err,
                             size_t errlen);

void sb_calendar_free(sb_calendar_t *cal);

const char *sb_calendar_name(const sb_calendar_t *cal);

/**
 * The instant when dur_ms of open time have passed since start_ms (time before the next
 * opening does not count; dur_ms 0 gives the first open instant at or after start_ms).
 * cal NULL means always open (start_ms + dur_ms). SB_CALENDAR_NEVER if it cannot be
 * reached within 10 years.
 */
int64_t sb_calendar_add(const sb_calendar_t *cal, int64_t start_ms, int64_t dur_ms);

/** Open time between from_ms and to_ms (0 when to_ms <= from_ms); cal NULL: to - from. */
int64_t sb_calendar_open_ms(const sb_calendar_t *cal, int64_t from_ms, int64_t to_ms);

/** Whether t_ms is open (cal NULL: always). */
bool sb_calendar_is_open(const sb_calendar_t *cal, int64_t t_ms);

/** The first open instant at or after t_ms (t_ms itself when open). */
int64_t sb_calendar_next_open(const sb_calendar_t *cal, int64_t t_ms);

/** The calendar zone's local wall time of t_ms (tm_gmtoff set, tm_zone NULL). */
void sb_calendar_local(const sb_calendar_t *cal, int64_t t_ms, struct tm *out);

#endif
