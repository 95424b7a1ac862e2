#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The project stands alone (issue 9, item 5): its code and docs cite only files in the
# repository. The contract lives in docs/contract.md, the facts about libraries in
# docs/libraries.md. This check, run on every `make test` (ctest: docs/citations), reads
# every source and doc file — *.c *.h *.md *.lua *.mjs *.js *.sh under core/, gateway/,
# connectors/, docs/, tests/, and README.md — and fails on a line that cites the design,
# libraries or style notes that sat outside the repository while it was first written
# (by their file names) or the shared folder beside it. Each hit prints `file:line: text`.
# The patterns below are written with bracket expressions so that this file does not
# match itself.
#
# In a git checkout the files are those git knows or would add (tracked, plus untracked
# ones not ignored: tests/e2e/node_modules is ignored); elsewhere every such file found.
#
#   tests/layers/citations.sh [ROOT]     exit 0: clean, 1: a citation, 2: usage
#   tests/layers/citations.sh --selftest exit 0 when the check finds each kind of citation
set -u

pattern='DESIGN[.]md|DESIGN[ ]§|LIBRARIES[.]md|STYLE[.]md|[.][.]/shared'

list_files() {
    local root=$1
    if git -C "$root" rev-parse --show-toplevel >/dev/null 2>&1 &&
        [ "$(cd "$root" && git rev-parse --show-toplevel)" = "$(cd "$root" && pwd -P)" ]; then
        git -C "$root" ls-files --cached --others --exclude-standard -- \
            README.md core gateway connectors docs tests
    else
        (cd "$root" && { [ -f README.md ] && echo README.md
            find core gateway connectors docs tests -name node_modules -prune -o -type f -print \
                2>/dev/null; })
    fi | grep -E '^README[.]md$|[.](c|h|md|lua|mjs|js|sh)$' | LC_ALL=C sort -u
}

check() {
    local root=$1 files n hits
    files=$(list_files "$root")
    [ -n "$files" ] || { echo "citations: no sources under $root" >&2; return 2; }
    n=$(printf '%s\n' "$files" | wc -l)
    # Files listed but absent (deleted, not yet staged) are skipped.
    hits=$(cd "$root" && printf '%s\n' "$files" |
        while IFS= read -r f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
        xargs -0 -r grep -nE -- "$pattern")
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits"
        echo "citations: $n files read, $(printf '%s\n' "$hits" | wc -l) line(s) cite files" \
            "outside the repository: cite docs/contract.md, docs/libraries.md or another" \
            "file of the repository instead" >&2
        return 1
    fi
    echo "citations: $n files read, every citation is inside the repository"
}

selftest() {
    local tmp rc=0 cite out
    tmp=$(mktemp -d) || return 2
    trap 'rm -rf "$tmp"' RETURN
    mkdir -p "$tmp/core" "$tmp/gateway" "$tmp/connectors" "$tmp/docs" "$tmp/tests/e2e/node_modules/x"
    echo '# clean' >"$tmp/README.md"
    echo '/* see docs/contract.md §5 */' >"$tmp/core/a.c"
    # The citations, spelt in parts so that this file does not match itself.
    local up=.. md=.md cites=()
    cites=("DESIGN$md" "LIBRARIES$md" "STYLE$md" "$up/shared/DESIGN$md")
    # A citation where no file of ours is read: node_modules and other extensions.
    printf '%s\n' "${cites[3]}" >"$tmp/tests/e2e/node_modules/x/a.js"
    printf '%s\n' "${cites[0]}" >"$tmp/docs/notes.txt"
    if ! out=$(check "$tmp" 2>&1); then
        echo "citations selftest: a clean tree failed: $out" >&2
        rc=1
    fi
    local n=0
    for cite in "${cites[@]}"; do
        for f in README.md core/b.h gateway/c.c connectors/d.lua docs/e.md tests/f.mjs tests/g.js \
            tests/h.sh; do
            n=$((n + 1))
            cp "$tmp/README.md" "$tmp/README.md.bak"
            [ "$f" = README.md ] && echo "see $cite" >>"$tmp/README.md" ||
                echo "see $cite" >"$tmp/$f"
            out=$(check "$tmp" 2>/dev/null)
            if [ $? -ne 1 ] || ! printf '%s\n' "$out" | grep -q "^$f:[0-9]*:"; then
                echo "citations selftest: '$cite' in $f was not reported (got: $out)" >&2
                rc=1
            fi
            mv "$tmp/README.md.bak" "$tmp/README.md"
            [ "$f" = README.md ] || rm -f "$tmp/$f"
        done
    done
    [ $rc -eq 0 ] && echo "citations selftest: $n planted citations caught, a clean tree passes"
    return $rc
}

if [ "${1:-}" = --selftest ]; then
    selftest
    exit $?
fi
root=${1:-"$(cd "$(dirname "$0")/../.." && pwd)"}
[ -d "$root/core" ] && [ -d "$root/docs" ] || {
    echo "citations: $root is not the source root (core/, docs/)" >&2
    exit 2
}
check "$root"
