/* SPDX-License-Identifier: MIT */
/* What the benchmarks read of another process: its resident memory. */
#ifndef SB_BENCH_PROC_RSS_H
#define SB_BENCH_PROC_RSS_H

#include <stdio.h>

/** VmRSS of process pid in KiB, or -1. */
static inline long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

#endif
