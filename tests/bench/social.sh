#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Social benchmark (issue 12), release build, the fake Mastodon server of tests/peers/ in the
# driver's process, an external Redis so its own CPU can be read: (a) N mentions (default
# 900) pushed through the fake's streaming API at once: mentions/s ingested (the connector
# holds at most 1000 waiting notifications; past that it drops the stream and catches up
# through GET /api/v1/notifications, which N > 1000 measures instead); (b) LAT
# mentions (default 500) at RATE/s (default 50): latency from the fake writing the stream
# event to the event on a staff SSE feed, p50/p99 (target p99 <= 100 ms); (c) REPLIES staff
# answers (default 1000) through the API: replies/s posted to the fake. Each with Redis' and
# the daemon's CPU per operation. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build/release
[ -x $B/switchboard ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
tmp=$(mktemp -d)
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
rport=$(freeport)
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir $tmp --daemonize yes \
    --logfile $tmp/redis.log
trap 'redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
for i in $(seq 50); do redis-cli -p $rport ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "== machine: $(nproc) cores, $(redis-server --version | cut -d' ' -f3)"
SB_TEST_TMP=$tmp SWITCHBOARD_BIN=$B/switchboard SBCTL_BIN=$B/sbctl REDIS_PORT=$rport \
    node tests/bench/social.mjs
