/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY, until core/calendar.c lands (it replaces this file; delete this one then):
 * the always-open calendar (NULL) of core/calendar.h, so that the SLA code builds and
 * 24/7 policies work. Every `calendar` line is refused.
 */
#include <stdio.h>

#include "core/calendar.h"
#include "core/err.h"

int sb_calendar_parse(int argc, char *const *argv, sb_calendar_t **out, char *err, size_t errlen)
{
    (void)argc;
    (void)argv;
    *out = NULL;
    snprintf(err, errlen, "business-hours calendars are not available in this build");
    return SB_EINVAL;
}

int sb_calendar_add_holidays(sb_calendar_t *cal, int argc, char *const *argv, char *err,
                             size_t errlen)
{
    (void)cal;
    (void)argc;
    (void)argv;
    snprintf(err, errlen, "business-hours calendars are not available in this build");
    return SB_EINVAL;
}

void sb_calendar_free(sb_calendar_t *cal)
{
    (void)cal;
}

const char *sb_calendar_name(const sb_calendar_t *cal)
{
    (void)cal;
    return "";
}

int64_t sb_calendar_add(const sb_calendar_t *cal, int64_t start_ms, int64_t dur_ms)
{
    (void)cal;
    return start_ms + dur_ms;
}

int64_t sb_calendar_open_ms(const sb_calendar_t *cal, int64_t from_ms, int64_t to_ms)
{
    (void)cal;
    return to_ms > from_ms ? to_ms - from_ms : 0;
}

bool sb_calendar_is_open(const sb_calendar_t *cal, int64_t t_ms)
{
    (void)cal;
    (void)t_ms;
    return true;
}

int64_t sb_calendar_next_open(const sb_calendar_t *cal, int64_t t_ms)
{
    (void)cal;
    return t_ms;
}

void sb_calendar_local(const sb_calendar_t *cal, int64_t t_ms, struct tm *out)
{
    (void)cal;
    time_t t = (time_t)(t_ms / 1000);
    gmtime_r(&t, out);
    out->tm_zone = NULL;
}
