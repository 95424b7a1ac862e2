#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Proves tests/layers/check.sh catches what it claims to: a scratch tree with one allowed
# include of every kind must pass, and each forbidden edge, added alone, must fail with
# its `file:line:` report.
set -u
check="$(cd "$(dirname "$0")" && pwd)/check.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sb-layers-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

tree() {
    rm -rf "$tmp/t"
    mkdir -p "$tmp/t/core" "$tmp/t/gateway" "$tmp/t/connectors/a" "$tmp/t/connectors/b" \
        "$tmp/t/tests/connectors/echo"
    cd "$tmp/t" || exit 2
    printf '#include "core/b.h"\n#include <uv.h>\n' >core/a.h
    printf '#include "core/a.h"\n#include "connectors/connector.h"\n#include "gateway/ws.h"\n' \
        >gateway/app.h
    printf '#include <hiredis/hiredis.h>\n#include <libwebsockets.h>\n' >gateway/http.c
    printf '#include "core/a.h"\n' >connectors/connector.h
    printf '#include "connectors/connector.h"\n' >connectors/registry.c
    printf '#include "connectors/connector.h"\n#include "connectors/a/internal.h"\n' \
        >connectors/a/a.c
    printf '#include "internal.h"\n#include "core/a.h"\n#include <jansson.h>\n' >connectors/a/b.c
    printf '#include "connectors/connector.h"\n#include "core/a.h"\n' \
        >tests/connectors/echo/echo.c
}

expect() { # expect <rc> <what> [<report fragment>]
    out=$("$check" "$tmp/t" 2>&1)
    rc=$?
    if [ "$rc" != "$1" ] || { [ -n "${3:-}" ] && ! grep -qF -- "$3" <<<"$out"; }; then
        echo "FAIL: $2: rc=$rc, output:"
        echo "$out"
        fails=$((fails + 1))
    else
        echo "ok: $2"
    fi
}

tree
expect 0 "allowed includes pass"
tree; echo '#include "gateway/app.h"' >>core/a.h
expect 1 "core -> gateway" 'core/a.h:3: core -> gateway/app.h'
tree; echo '#include "connectors/connector.h"' >>core/a.h
expect 1 "core -> connectors" 'core/a.h:3: core -> connectors/connector.h'
tree; echo '#include <libwebsockets.h>' >>core/a.h
expect 1 "core -> lws" 'only gateway/ sees libwebsockets'
tree; echo '#include "gateway/ws.h"' >>connectors/a/a.c
expect 1 "connector -> gateway" 'connectors/a/a.c:3: connector:a -> gateway/ws.h'
tree; echo '#include "gateway/http.h"' >>connectors/connector.h
expect 1 "connector.h -> gateway" 'connectors/connector.h:2: shared -> gateway/http.h'
tree; echo '#include "connectors/b/internal.h"' >>connectors/a/a.c
expect 1 "connector -> another" 'one connector never includes another'
tree; echo '#include "connectors/a/internal.h"' >>tests/connectors/echo/echo.c
expect 1 "example connector -> a connector" 'tests/connectors/echo/echo.c:3'
tree; echo '#include <hiredis/async.h>' >>connectors/a/b.c
expect 1 "connector -> hiredis" 'a connector never sees hiredis'
tree; echo '#include "../../gateway/ws.h"' >>connectors/a/b.c
expect 1 "connector -> gateway through ../" 'gateway'

[ "$fails" = 0 ] || exit 1
