#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Web chat benchmarks (issue 3), release build: (a) idle visitor sockets held and the
# daemon's memory per socket; (b) visitors sending while a staff SSE stream listens:
# messages/s acked at saturation and latencies at a fixed 5k msgs/s. Prints figures only.
# IDLE=N (default 50000) sets the number of idle sockets.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build/release
[ -x $B/tests/bench/bench_ws ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
rport=$(freeport)
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no --dir $tmp --daemonize yes \
    --logfile $tmp/redis.log --maxclients 1000
hport=$(freeport)
cat > $tmp/sb.conf <<CONF
listen 127.0.0.1:$hport
redis redis://127.0.0.1:$rport
data_dir $tmp/var
log_level warn
visitor_rate 100000
visitor_ip_rate 10000000
CONF
$B/switchboard -c $tmp/sb.conf 2>$tmp/sb.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
for i in $(seq 100); do curl -fs http://127.0.0.1:$hport/readyz >/dev/null && break; sleep 0.05; done
token=$($B/sbctl -c $tmp/sb.conf token create --role admin --name bench 2>/dev/null)
echo "== widget loader: $(gzip -9 -c gateway/assets/widget.js | wc -c) bytes gzipped (target <= 10240)"
echo "== (a) idle visitor connections"
# Each socket costs a descriptor in the bench and in the daemon: the hard limit caps N.
hard=$(ulimit -Hn)
want=${IDLE:-50000}
if [ "$hard" != unlimited ] && [ "$want" -gt $((hard - 2000)) ]; then
    echo "note: open-files hard limit is $hard here; measuring $((hard - 2000)) sockets instead of $want"
    want=$((hard - 2000))
fi
$B/tests/bench/bench_ws idle 127.0.0.1 $hport "$want" $pid
# The fixed-rate run goes first: after a saturation run the daemon is still working
# through its backlog of events for a while.
echo "== (b) fixed rate: 200 visitors, 5000 msgs/s, 10 s"
$B/tests/bench/bench_ws load 127.0.0.1 $hport 200 5000 10 "$token"
echo "== (b) saturation: 200 visitors, as fast as acks allow, 10 s"
$B/tests/bench/bench_ws load 127.0.0.1 $hport 200 0 10 "$token"
