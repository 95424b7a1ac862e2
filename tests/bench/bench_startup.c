/* SPDX-License-Identifier: MIT */
/*
 * Start-up time and idle memory of the daemon: execs `switchboard -c CONF`, polls
 * GET /healthz over loopback every 0.2 ms until it answers 200, prints the time from
 * exec to that answer and the process's RSS after it has idled for a second.
 * Usage: bench_startup SWITCHBOARD CONF PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/bench/proc_rss.h"

#include "core/util.h"

static int healthz(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
            char buf[64] = {0};
            if (read(fd, buf, sizeof(buf) - 1) > 12)
                ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
        }
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_startup SWITCHBOARD CONF PORT\n");
        return 2;
    }
    int port = atoi(argv[3]);
    uint64_t t0 = sb_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        execl(argv[1], argv[1], "-c", argv[2], (char *)NULL);
        _exit(127);
    }
    double ms = -1;
    while ((double)(sb_mono_ns() - t0) / 1e6 < 5000) {
        if (healthz(port)) {
            ms = (double)(sb_mono_ns() - t0) / 1e6;
            break;
        }
        usleep(200);
    }
    sleep(1);
    long kb = proc_rss_kb(pid);
    printf("startup: exec_to_healthz=%.1fms (target <= 100 ms, external Redis)\n", ms);
    printf("idle_rss: %.1f MB (target <= 10 MB, embedded Redis excluded)\n", (double)kb / 1024);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    return ms < 0;
}
