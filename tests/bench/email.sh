#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Email benchmarks (issue 10), release build, real Dovecot and aiosmtpd on loopback, an
# external Redis so its own CPU can be read: (a) ingest of a backlog of MAILS mails of
# ~30 KB (target >= 300 msgs/s); (b) latency from IMAP APPEND to the live event (p99 <= 2 s);
# (c) SMTP out of OUT answers (>= 200 msgs/s); (d) the daemon's RSS with 20 mailboxes idle.
# Prints figures only. MAILS (default 10000), OUT (default 2000), LAT (default 200).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/cpu.sh
B=build/release
[ -x $B/switchboard ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
tmp=$(mktemp -d)
chmod 755 $tmp # Dovecot runs its mail processes as another user when run as root
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
rport=$(freeport)
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir $tmp --daemonize yes \
    --logfile $tmp/redis.log
trap 'redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
SB_TEST_TMP=$tmp SWITCHBOARD_BIN=$B/switchboard SBCTL_BIN=$B/sbctl REDIS_PORT=$rport \
    node tests/bench/email.mjs
