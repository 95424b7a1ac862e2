#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The daemon's idle footprint: libraries it loads only when a feature needs them must not
# be linked (core/curl_dl.c: libcurl; connectors/email/etpan_dl.c: libetpan). Linked,
# their dependencies' constructors (GnuTLS, p11-kit, nettle, Berkeley DB, SASL, Kerberos)
# run in every daemon: 3 to 4 MB of idle RSS each (tests/bench/run.sh prints idle_rss).
#
#   tests/layers/idle_libs.sh BINARY     exit 0: clean, 1: a lazy library is linked
set -u
bin=${1:?usage: idle_libs.sh BINARY}
needed=$(readelf -d "$bin" | awk '/\(NEEDED\)/ { gsub(/[\[\]]/, "", $5); print $5 }')
[ -n "$needed" ] || { echo "idle_libs: no NEEDED entries read from $bin" >&2; exit 1; }
bad=0
for lib in $needed; do
    case $lib in
    libcurl* | libetpan* | libgnutls*)
        echo "idle_libs: $bin links $lib, which must be loaded when first used" >&2
        bad=1
        ;;
    esac
done
exit $bad
