#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs, with apt, every Debian package that Switchboard's build, daemon and tests need,
# and nothing that is already there. Idempotent: a second run does nothing but check.
# Also installs the npm packages the browser tests use (into tests/e2e/node_modules).
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config git ca-certificates curl openssl
    libuv1-dev libwebsockets-dev libwebsockets-evlib-uv
    libhiredis-dev libjansson-dev libssl-dev libcurl4-gnutls-dev libetpan-dev
    libunistring-dev libcmocka-dev redis-server redis-tools
    dovecot-imapd python3-aiosmtpd
    nodejs npm chromium
    clang-format tzdata
    clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        # nodejs/npm may come from elsewhere (e.g. a preinstalled Node): accept the binaries.
        case "$p" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
        esac
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # Debian starts services on install; the tests run their own on free ports.
    for svc in redis-server dovecot; do
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
        fi
    done
fi

# Browser-test driver (npm registry, no browser download: uses Debian's chromium).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/e2e/package.json" ] && [ ! -d "$here/tests/e2e/node_modules/playwright-core" ]; then
    echo "install-deps: npm install in tests/e2e"
    (cd "$here/tests/e2e" && npm install --no-audit --no-fund --silent)
fi
echo "install-deps: ok"
