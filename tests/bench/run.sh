#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks of the foundation (issue 2), on the release build: store ingests/s over one
# pipelined async connection vs redis-benchmark's XADD on the same server; the daemon's
# idle RSS; time from exec to /healthz 200 with an external Redis. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/cpu.sh
B=build/release
[ -x $B/tests/bench/bench_store ] || { cmake --preset release >/dev/null && cmake --build $B -j2; }
tmp=$(mktemp -d)
trap 'redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf $tmp' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null \
       || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --dir $tmp --daemonize yes \
    --logfile $tmp/redis.log
for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "== machine: $(nproc) cores, $(redis-server --version | cut -d' ' -f3)"
N=${N:-200000}
echo "== store ingest (one async connection, pipelined, 1000 in flight, 1000 contacts)"
r0=$(redis_cpu_us $port)
/usr/bin/time -f '%U %S' -o $tmp/client.cpu \
    $B/tests/bench/bench_store redis://127.0.0.1:$port $N 1000 1000 | tee $tmp/store.txt
r1=$(redis_cpu_us $port)
c=$(awk '{ printf "%.0f", ($1 + $2) * 1e6 }' $tmp/client.cpu)
echo "cpu: $(per_op redis $r0 $r1 $N) $(per_op client 0 $c $N) (Redis from INFO, the pipelining C client from time(1))"
echo "== reference: redis-benchmark XADD 200 B, 1 connection, pipeline 64"
payload=$(head -c 200 /dev/zero | tr '\0' x)
redis-benchmark -p $port -c 1 -P 64 -n $N -q XADD benchref '*' m "$payload" | tr '\r' '\n' \
    | grep -v "^$" | tail -1 | sed "s/^XADD benchref[^:]*: /XADD: /" | tee $tmp/ref.txt
store=$(grep -o 'rate=[0-9]*' $tmp/store.txt | cut -d= -f2)
ref=$(grep -oE '[0-9.]+ requests per second' $tmp/ref.txt | cut -d' ' -f1)
awk -v s="$store" -v r="$ref" 'BEGIN { printf "ratio: store/XADD = %.2f (target: store >= 40000/s)\n", s / r }'
echo "== daemon start-up and idle memory (external Redis)"
hport=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat > $tmp/sb.conf <<CONF
listen 127.0.0.1:$hport
redis redis://127.0.0.1:$port
data_dir $tmp/var
log_level warn
CONF
$B/tests/bench/bench_startup $B/switchboard $tmp/sb.conf $hport
