#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# docs/connectors.md shows tests/connectors/echo/echo.c whole, between
# `<!-- begin tests/connectors/echo/echo.c -->` + a ```c fence and the closing fence +
# `<!-- end … -->`. The file is compiled and tested (tests/integration/test_connectors.c);
# this fails when the doc's copy differs from it, so the doc cannot rot.
set -u
root=${1:-"$(cd "$(dirname "$0")/../.." && pwd)"}
doc="$root/docs/connectors.md"
src="$root/tests/connectors/echo/echo.c"
copy=$(awk '
    /^<!-- begin tests\/connectors\/echo\/echo.c -->$/ { on = 1; next }
    on == 1 && /^```c$/ { on = 2; next }
    on == 2 && /^```$/ { exit }
    on == 2 { print }
' "$doc")
[ -n "$copy" ] || { echo "doc_example: no echo.c block in $doc" >&2; exit 1; }
if ! diff -u "$src" <(printf '%s\n' "$copy") >&2; then
    echo "doc_example: the copy in docs/connectors.md differs from $src (above)" >&2
    exit 1
fi
echo "doc_example: docs/connectors.md shows $src as it is"
