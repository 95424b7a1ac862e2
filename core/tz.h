/* SPDX-License-Identifier: MIT */
/*
 * Named time zones read from the system zoneinfo (TZif files, RFC 8536, versions 1 to 3),
 * without touching the process-wide TZ variable: the calendar code of SLA clocks
 * (core/calendar.c) asks for the UTC offset of any instant in any zone from any thread.
 * Why not localtime_r or ICU: docs/sla.md, "Time zones".
 *
 * Instants are seconds since the epoch (UTC, no leap seconds). After a file's last
 * transition the POSIX TZ string of its footer ("CET-1CEST,M3.5.0,M10.5.0/3") decides.
 * A loaded zone is immutable: share it between threads freely.
 */
#ifndef SB_TZ_H
#define SB_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_tz sb_tz_t;

/** Largest UTC offset (either sign) a zone may have, in seconds (about 27.8 h). */
#define SB_TZ_MAX_OFFSET 100000

/**
 * Loads the zone `name` ("Europe/Berlin", "UTC") from $TZDIR or /usr/share/zoneinfo.
 * Names with "..", a leading '/' or characters outside [A-Za-z0-9_+-/] are refused, and so
 * is a file that is not TZif. "UTC" works without a zoneinfo. Returns 0 and *out (free with
 * sb_tz_free), or SB_EINVAL with *out NULL and a one-line reason in err.
 */
int sb_tz_load(const char *name, sb_tz_t **out, char *err, size_t errlen);

/**
 * Parses the bytes of a TZif file (untrusted: every count is capped, every read bounded).
 * Returns 0 and *out, or SB_EINVAL/SB_ETOOBIG with *out NULL and the reason in err.
 */
int sb_tz_parse(const unsigned char *data, size_t len, sb_tz_t **out, char *err, size_t errlen);

/**
 * Makes a zone of a POSIX TZ string alone (what a TZif footer holds): "UTC0",
 * "<+0330>-3:30", "EST5EDT,M3.2.0,M11.1.0", rules Jn, n or Mm.w.d with /time, hours of
 * the times -167…167 (TZif v3). 0 and *out, or SB_EINVAL with the reason in err.
 */
int sb_tz_posix(const char *s, size_t len, sb_tz_t **out, char *err, size_t errlen);

/** Frees a zone; accepts NULL. */
void sb_tz_free(sb_tz_t *tz);

/** The zone's name as loaded ("" for a parsed one). */
const char *sb_tz_name(const sb_tz_t *tz);

/** Seconds east of UTC at the instant utc_s. */
int32_t sb_tz_offset(const sb_tz_t *tz, int64_t utc_s);

/** Whether daylight saving time is in effect at utc_s (the TZif type's isdst). */
bool sb_tz_isdst(const sb_tz_t *tz, int64_t utc_s);

/**
 * The first instant after after_s at which the zone's offset or DST flag may change
 * (a transition that changes nothing may be reported). 0 and *at_s, or SB_ENOTFOUND when
 * the zone never changes again.
 */
int sb_tz_next_transition(const sb_tz_t *tz, int64_t after_s, int64_t *at_s);

/** Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1…12, d 1…31). */
int64_t sb_tz_days_from_civil(int64_t y, unsigned m, unsigned d);

/** The date of day number `days` since 1970-01-01 (inverse of sb_tz_days_from_civil). */
void sb_tz_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
