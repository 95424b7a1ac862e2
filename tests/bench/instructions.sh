#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon's instructions per web chat message, counted by callgrind: unlike CPU time,
# the count does not move with what else the machine is doing, so two builds can be
# compared on a busy box. Release build, external Redis, 50 visitors at 200 msgs/s with a
# staff SSE stream; per message = (3000-message run − 1000-message run) / 2000, so start-up
# and connections cancel out. Usage: tests/bench/instructions.sh [TREE] (default: here).
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
B=$PWD/build/release
[ -x $B/tests/bench/bench_ws ] || { cmake --preset release >/dev/null && cmake --build build/release -j2; }
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed"; exit 1; }
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# run SECONDS: prints "<instructions> <acked>"
run() {
    local tmp rport hport pid token acked
    tmp=$(mktemp -d)
    rport=$(freeport) hport=$(freeport)
    redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir $tmp \
        --daemonize yes --logfile $tmp/redis.log
    printf 'listen 127.0.0.1:%s\nredis redis://127.0.0.1:%s\ndata_dir %s/var\nlog_level warn\nvisitor_rate 100000\nvisitor_ip_rate 10000000\n' \
        $hport $rport $tmp > $tmp/sb.conf
    valgrind --tool=callgrind --callgrind-out-file=$tmp/cg.out $B/switchboard -c $tmp/sb.conf \
        2>$tmp/vg.log &
    pid=$!
    for _ in $(seq 600); do curl -fs http://127.0.0.1:$hport/readyz >/dev/null 2>&1 && break; sleep 0.1; done
    token=$($B/sbctl -c $tmp/sb.conf token create --role admin --name bench 2>/dev/null)
    acked=$($B/tests/bench/bench_ws load 127.0.0.1 $hport 50 200 "$1" "$token" |
        sed -n 's/^load:.* acked=\([0-9]*\).*/\1/p')
    kill -INT $pid
    wait $pid || true
    echo "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' $tmp/vg.log) $acked"
    redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true
    rm -rf $tmp
}
read -r i1 a1 < <(run 5)
read -r i2 a2 < <(run 15)
awk -v i1=$i1 -v a1=$a1 -v i2=$i2 -v a2=$a2 'BEGIN {
    printf "instructions: per_message=%.1fk (runs: %d msgs %.1fM, %d msgs %.1fM)\n",
        (i2 - i1) / (a2 - a1) / 1000, a1, i1 / 1e6, a2, i2 / 1e6 }'
