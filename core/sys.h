/* SPDX-License-Identifier: MIT */
/*
 * The system calls tests need to control, behind one table (as SQLite's VFS does): the
 * wall clock and the monotonic clock today. Everything in Switchboard reads time through
 * sb_now_ms() and sb_mono_ns(), which call through the table in use, so a test swaps the
 * table instead of sleeping to let time pass.
 *
 * In builds with SB_TESTING defined (the dev preset; never release), the daemon also
 * honours SWITCHBOARD_TEST_CLOCK=<file>: the wall clock is then the real one plus the
 * signed number of milliseconds the file holds, re-read on every call, so an end-to-end
 * test moves the daemon's time by rewriting the file (docs/hardening-fuzz.md).
 */
#ifndef SB_SYS_H
#define SB_SYS_H

#include <stdint.h>

/** The system calls behind the table. An entry left NULL uses the real call. */
typedef struct {
    /** Wall clock in milliseconds since the epoch. */
    int64_t (*now_ms)(void);
    /** Monotonic clock in nanoseconds. */
    uint64_t (*mono_ns)(void);
} sb_sys_t;

/**
 * Makes sys the table every later call goes through, or the real system calls if sys is
 * NULL. sys is borrowed and must outlive its use (a static table). Meant for tests: call it
 * while no other thread reads the clock. Returns the table that was in use (NULL = real).
 */
const sb_sys_t *sb_sys_set(const sb_sys_t *sys);

/** Wall clock in milliseconds since the epoch, through the table. */
int64_t sb_now_ms(void);

/** Monotonic clock in nanoseconds, through the table. */
uint64_t sb_mono_ns(void);

#endif
