#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What durable acks cost: store ingests/s and latency through the embedded Redis set-up
# (unix socket, AOF in a directory on the data disk) with appendonly off, appendfsync
# everysec and appendfsync always, for a pipelined window (1000 in flight, the daemon
# under load) and for one call at a time (a quiet daemon: the latency of one ack).
# Release build; prints figures only. DIR=path puts the AOF elsewhere (default: build/).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build/release
[ -x $B/tests/bench/bench_store ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
tmp=$(realpath "$(mktemp -d -p "${DIR:-build}")")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf $tmp' EXIT
N=${N:-50000}
echo "== machine: $(nproc) cores, $(redis-server --version | cut -d' ' -f3), AOF on $(df -T $tmp | awk 'NR==2 {print $2" "$1}')"
run() { # label, window, n, redis args...
    local label=$1 window=$2 n=$3
    shift 3
    rm -rf $tmp/r && mkdir -p $tmp/r
    redis-server --port 0 --unixsocket $tmp/r/redis.sock --dir $tmp/r --save '' \
        --daemonize no --logfile $tmp/r/redis.log "$@" &
    pid=$!
    for i in $(seq 100); do redis-cli -s $tmp/r/redis.sock ping >/dev/null 2>&1 && break; sleep 0.05; done
    printf '%-22s window=%-5s ' "$label" "$window"
    $B/tests/bench/bench_store unix:$tmp/r/redis.sock $n $window 1000 2>/dev/null | tr '\n' ' '
    echo
    kill $pid && wait $pid 2>/dev/null || true
    pid=
}
for w in 1000 1; do
    n=$N
    [ $w = 1 ] && n=$((N / 10))
    run "appendonly no" $w $n --appendonly no
    run "appendfsync everysec" $w $n --appendonly yes --appendfsync everysec
    run "appendfsync always" $w $n --appendonly yes --appendfsync always
done
