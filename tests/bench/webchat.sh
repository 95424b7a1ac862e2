#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Web chat benchmarks (issue 3), release build: (a) idle visitor sockets held and the
# daemon's memory per socket; (b) visitors sending while a staff SSE stream listens:
# messages/s acked at saturation and latencies at a fixed 5k msgs/s. Prints figures only.
# IDLE=N (default 50000) sets the number of idle sockets.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/cpu.sh
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
# Each socket costs a descriptor in the bench and in the daemon, and the open-files hard
# limit is per process (20000 on the machine this was written on, not raisable without
# CAP_SYS_RESOURCE). When one process can't hold IDLE sockets, the box holds them with
# several gateway nodes on the same Redis (how Switchboard scales anyway): each node
# and its own bench process take a share, all open at the same time.
hard=$(ulimit -Hn)
want=${IDLE:-50000}
per=$want
if [ "$hard" != unlimited ] && [ "$want" -gt $((hard - 2000)) ]; then
    per=$((hard - 2000))
fi
nodes=$(( (want + per - 1) / per ))
per=$(( (want + nodes - 1) / nodes ))
if [ "$nodes" -gt 1 ]; then
    echo "note: open-files hard limit is $hard per process: $want sockets over $nodes gateway nodes ($per each)"
fi
pids=($pid) ports=($hport)
for n in $(seq 2 "$nodes"); do
    p=$(freeport)
    sed "s/^listen .*/listen 127.0.0.1:$p/" $tmp/sb.conf > $tmp/sb$n.conf
    $B/switchboard -c $tmp/sb$n.conf 2>$tmp/sb$n.log &
    pids+=($!)
    ports+=($p)
    for i in $(seq 100); do curl -fs http://127.0.0.1:$p/readyz >/dev/null && break; sleep 0.05; done
done
trap 'kill ${pids[*]} 2>/dev/null; wait ${pids[*]} 2>/dev/null; redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
bpids=()
for i in $(seq 0 $((nodes - 1))); do
    $B/tests/bench/bench_ws idle 127.0.0.1 ${ports[$i]} "$per" ${pids[$i]} 600 > $tmp/idle$i.out &
    bpids+=($!)
done
# Once every node has measured, count the sockets the nodes hold at that moment.
for i in $(seq 600); do
    done_n=$(cat $tmp/idle*.out 2>/dev/null | grep -c daemon_rss || true)
    [ "$done_n" -ge "$nodes" ] && break
    sleep 0.5
done
total=0 rss_before=0 rss_after=0
for i in $(seq 0 $((nodes - 1))); do
    sed "s/^/node$((i + 1)): /" $tmp/idle$i.out
    held=$(curl -fs http://127.0.0.1:${ports[$i]}/metrics | awk '/^switchboard_webchat_sockets /{print $2}')
    total=$((total + held))
    rss_before=$((rss_before + $(sed -n 's/.*before=\([0-9.]*\)MB.*/\1/p' $tmp/idle$i.out | awk '{printf "%d", $1 * 1024}')))
    rss_after=$((rss_after + $(sed -n 's/.*after=\([0-9.]*\)MB.*/\1/p' $tmp/idle$i.out | awk '{printf "%d", $1 * 1024}')))
done
kill ${bpids[*]} 2>/dev/null; wait ${bpids[*]} 2>/dev/null || true
awk -v t=$total -v b=$rss_before -v a=$rss_after -v n=$nodes 'BEGIN {
    printf "idle_total: sockets_held_at_once=%d nodes=%d rss_before=%.1fMB rss_after=%.1fMB delta_per_socket=%.2fKB (targets: >= 50000, <= 4 KB)\n",
        t, n, b / 1024, a / 1024, t ? (a - b) / t : 0 }'
for n in $(seq 2 "$nodes"); do kill ${pids[$((n - 1))]} 2>/dev/null || true; done
for n in $(seq 2 "$nodes"); do wait ${pids[$((n - 1))]} 2>/dev/null || true; done
# The load runs start on a quiet node: every idle socket closed and forgotten.
for i in $(seq 600); do
    held=$(curl -fs http://127.0.0.1:$hport/metrics | awk '/^switchboard_webchat_sockets /{print $2}')
    [ "${held:-1}" -eq 0 ] && break
    sleep 0.1
done
sleep 1
# The fixed-rate run goes first: after a saturation run the daemon is still working
# through its backlog of events for a while.
# load RATE: one run, then the daemon's and Redis' CPU per acked message.
load() {
    local r0 d0 r1 d1 acked
    r0=$(redis_cpu_us $rport) d0=$(proc_cpu_us $pid)
    $B/tests/bench/bench_ws load 127.0.0.1 $hport 200 "$1" 10 "$token" | tee $tmp/load.out
    r1=$(redis_cpu_us $rport) d1=$(proc_cpu_us $pid)
    acked=$(sed -n 's/^load:.* acked=\([0-9]*\).*/\1/p' $tmp/load.out)
    echo "  cpu per acked message: $(per_op daemon $d0 $d1 $acked) $(per_op redis $r0 $r1 $acked)"
}
echo "== (b) fixed rate: 200 visitors, 5000 msgs/s, 10 s"
load 5000
echo "== (b) saturation: 200 visitors, as fast as acks allow, 10 s"
load 0
