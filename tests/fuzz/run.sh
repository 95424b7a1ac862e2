#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs the libFuzzer targets of tests/fuzz on their committed corpus.
#   run.sh build                 configure and build build/fuzz (the `fuzz` preset)
#   run.sh SECONDS [target...]   run each target (default: all) for SECONDS
# New inputs go to build/fuzz/work/<target> (the committed corpus is only read); a crash,
# leak, timeout or broken invariant leaves its input in build/fuzz/artifacts/ and fails.
# `make test` runs every target for a few seconds (CTest fuzz/*), `make fuzz` for 10 min.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
bdir=build/fuzz

if [ "${1:-}" = build ]; then
    if ! command -v clang >/dev/null 2>&1; then
        echo "run.sh: clang is missing (deploy/install-deps.sh installs it)" >&2
        exit 77
    fi
    nice -n 10 cmake --preset fuzz >/dev/null
    nice -n 10 cmake --build --preset fuzz
    exit 0
fi

secs=${1:?usage: run.sh build | run.sh SECONDS [target...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
status=0
for t in "${targets[@]}"; do
    bin=$bdir/tests/fuzz/$t
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin is not built (run.sh build)" >&2
        exit 1
    fi
    mkdir -p "$bdir/work/$t" "$bdir/artifacts"
    log=$bdir/work/$t.log
    start=$(date +%s)
    if "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$bdir/artifacts/$t-" "$bdir/work/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        echo "$t: ${runs:-?} inputs in $(($(date +%s) - start)) s, no crash"
    else
        echo "$t: FAILED after $(($(date +%s) - start)) s; see $log and $bdir/artifacts/" >&2
        grep -E "SUMMARY|fuzz_[a-z]+:|ERROR" "$log" | head -5 >&2 || true
        status=1
    fi
done
exit $status
