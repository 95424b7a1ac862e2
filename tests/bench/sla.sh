#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SLA timer benchmark (issue 11), release build, two nodes on an external Redis (so its
# own CPU and memory can be read): N open conversations (default 100000) each with
# pending SLA timers; prints the timer scan's CPU per second on each node and on Redis
# while nothing is due, Redis memory per conversation, and how late the warnings and
# breaches fire (p50/p99). Prints figures only. N, FIRST_S (the first-response target in s,
# default 240: the run takes about FIRST_S + 30 s after the conversations are made);
# NOSLA=1 makes the same conversations with no policy and prints only their cost.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/cpu.sh
B=build/release
[ -x $B/switchboard ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
tmp=$(mktemp -d)
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
rport=$(freeport)
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir $tmp --daemonize yes \
    --logfile $tmp/redis.log
trap 'redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
SB_TEST_TMP=$tmp SWITCHBOARD_BIN=$B/switchboard SBCTL_BIN=$B/sbctl REDIS_PORT=$rport \
    node tests/bench/sla.mjs
