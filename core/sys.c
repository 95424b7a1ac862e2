/* SPDX-License-Identifier: MIT */
/*
 * The system-call table of sys.h: the real clocks, the table in use, and (SB_TESTING
 * builds only) the file-offset wall clock of SWITCHBOARD_TEST_CLOCK.
 */
#include "core/sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#ifdef SB_TESTING
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#endif

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t real_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static _Atomic(const sb_sys_t *) table;

#ifdef SB_TESTING
/* ---- SWITCHBOARD_TEST_CLOCK (test builds only) ---- */

static const char *clock_file;

/* The offset the file holds: an optional sign and decimal digits; 0 while it is missing
 * or malformed (a test writes it with a rename, so a reader never sees half of it). */
static int64_t file_offset_ms(void)
{
    int fd = open(clock_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char text[32];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text)
        return 0;
    return (int64_t)v;
}

static int64_t file_now_ms(void)
{
    return real_now_ms() + file_offset_ms();
}

static const sb_sys_t file_clock = {.now_ms = file_now_ms};

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void env_init(void)
{
    const char *f = getenv("SWITCHBOARD_TEST_CLOCK");
    if (!f || !*f || atomic_load(&table))
        return;
    clock_file = f;
    atomic_store(&table, &file_clock);
    SB_LOG_WARN("sys.test_clock",
                "file=\"%s\" what=\"wall clock offset by this file (test "
                "build)\"",
                f);
}
#endif

const sb_sys_t *sb_sys_set(const sb_sys_t *sys)
{
#ifdef SB_TESTING
    pthread_once(&env_once, env_init);
#endif
    return atomic_exchange(&table, sys);
}

static const sb_sys_t *current(void)
{
#ifdef SB_TESTING
    pthread_once(&env_once, env_init);
#endif
    return atomic_load_explicit(&table, memory_order_acquire);
}

int64_t sb_now_ms(void)
{
    const sb_sys_t *t = current();
    return t && t->now_ms ? t->now_ms() : real_now_ms();
}

uint64_t sb_mono_ns(void)
{
    const sb_sys_t *t = current();
    return t && t->mono_ns ? t->mono_ns() : real_mono_ns();
}
