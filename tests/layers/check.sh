#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The layering of the source tree, checked on every `make test` (ctest: layers/includes).
# Reads every #include of every .c and .h file under core/, gateway/ and connectors/
# (and the example connectors under tests/connectors/, which are connectors too) and
# fails on a forbidden edge:
#   core/                  -> gateway/ or connectors/ (and <libwebsockets.h>)
#   connectors/<a>/        -> gateway/, connectors/<b>/, connectors/registry.c
#                             (and <libwebsockets.h>, <hiredis/…>: a connector sees neither)
#   connectors/connector.h, connectors/registry.c (the shared interface) -> gateway/
# gateway/ may include anything. A quoted include without a slash, or starting with ./ or
# ../, is resolved against the including file's folder. Each violation prints `file:line: from -> to: why`.
#
#   tests/layers/check.sh [ROOT]     exit 0: clean, 1: a forbidden edge, 2: usage
set -u
root=${1:-"$(cd "$(dirname "$0")/../.." && pwd)"}
cd "$root" 2>/dev/null || { echo "layers: no such directory: $root" >&2; exit 2; }
[ -d core ] && [ -d gateway ] && [ -d connectors ] || {
    echo "layers: $root is not the source root (core/, gateway/, connectors/)" >&2
    exit 2
}

dirs="core gateway connectors"
[ -d tests/connectors ] && dirs="$dirs tests/connectors"
files=$(find $dirs -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ -n "$files" ] || { echo "layers: no sources under $root" >&2; exit 2; }

# awk prints one line per violation; the count of files read goes to stderr at the end.
# shellcheck disable=SC2086
awk '
function layer(path,    p) {
    # "core", "gateway", "shared" (connector.h, registry.c) or "connector:<name>"
    if (path ~ /^core\//) return "core"
    if (path ~ /^gateway\//) return "gateway"
    if (path ~ /^tests\/connectors\/[^\/]+\//) { split(path, p, "/"); return "connector:" p[3] }
    if (path ~ /^connectors\/[^\/]+\//) { split(path, p, "/"); return "connector:" p[2] }
    if (path ~ /^connectors\//) return "shared"
    return "other"
}
function normalize(path,    parts, n, i, out, k) {
    n = split(path, parts, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "." || parts[i] == "") continue
        if (parts[i] == ".." && k > 0) { k--; continue }
        out[++k] = parts[i]
    }
    path = ""
    for (i = 1; i <= k; i++) path = path (i > 1 ? "/" : "") out[i]
    return path
}
function bad(why) {
    printf "%s:%d: %s -> %s: %s\n", FILENAME, FNR, from, target, why
    n++
}
FNR == 1 { from = layer(FILENAME); dir = FILENAME; sub(/\/[^\/]*$/, "", dir); files++ }
/^[ \t]*#[ \t]*include[ \t]*[<"]/ {
    line = $0
    sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line)
    quoted = substr(line, 1, 1) == "\""
    target = substr(line, 2)
    sub(/[">].*$/, "", target)
    if (!quoted) {
        if (from != "gateway" && target == "libwebsockets.h")
            bad("only gateway/ sees libwebsockets")
        else if (from ~ /^connector:/ && target ~ /^hiredis\//)
            bad("a connector never sees hiredis")
        next
    }
    if (index(target, "/") == 0 || target ~ /^\.\.?\//) target = dir "/" target
    target = normalize(target)
    to = layer(target)
    if (from == "core" && to != "core")
        bad("core includes only core/")
    else if ((from ~ /^connector:/ || from == "shared") && to == "gateway")
        bad("a connector never includes gateway/ (use the host ops of connectors/connector.h)")
    else if (from ~ /^connector:/ && to ~ /^connector:/ && to != from)
        bad("one connector never includes another")
    else if (from ~ /^connector:/ && target == "connectors/registry.c")
        bad("a connector does not include the registry")
}
END {
    printf "layers: %d files read, %d forbidden include(s)\n", files, n > "/dev/stderr"
    exit n > 0
}
' $files
