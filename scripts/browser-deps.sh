#!/usr/bin/env bash
# What the browser test (tests/browser/docs.test.mjs) needs, installed only when missing:
#   - Debian's `chromium` package (/usr/bin/chromium), with apt-get;
#   - playwright-core from npm into tests/browser/node_modules, exactly as package-lock.json pins
#     it (`npm ci`), again whenever the lock file is newer than the installed tree.
# No browser is ever downloaded by npm: playwright-core has no install step, and the test drives
# Debian's Chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "browser-deps: installing Debian's chromium package (apt-get)" >&2
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium
fi

browser=tests/browser
installed="$browser/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$browser/package-lock.json" -nt "$installed" ]; then
    echo "browser-deps: installing the browser test's npm packages (npm ci)" >&2
    (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
