# SPDX-License-Identifier: MIT
# Sourced by the benchmark scripts: CPU time of Redis (from its own INFO) and of a process
# (from /proc), in microseconds, so each figure can be printed per operation.

# redis_cpu_us PORT: used_cpu_user + used_cpu_sys of the Redis on 127.0.0.1:PORT.
redis_cpu_us() {
    redis-cli -p "$1" info cpu | tr -d '\r' |
        awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.0f\n", s * 1e6 }'
}

# proc_cpu_us PID: utime + stime of a live process.
proc_cpu_us() {
    local tick
    tick=$(getconf CLK_TCK)
    # fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name
    sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$tick" '{ printf "%.0f\n", ($12 + $13) * 1e6 / t }'
}

# per_op LABEL US_BEFORE US_AFTER OPS: prints "LABEL=<µs per op>".
per_op() {
    awk -v l="$1" -v a="$2" -v b="$3" -v n="$4" \
        'BEGIN { printf "%s=%.2fus/op", l, (n > 0 ? (b - a) / n : 0) }'
}
