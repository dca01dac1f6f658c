#!/usr/bin/env bash
# What estuary-browser-shim's tests need beyond `.[test]`: a system Chromium, Node.js with npm,
# and examples/web-client's pinned npm packages (npm ci from its package-lock.json).
# Idempotent and quiet: a fast no-op when everything is there; apt-get update only when an apt
# package is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
client="$root/examples/web-client"

need_apt=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser: missing ${need_apt[*]}; run as root: apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# npm ci only when node_modules is missing or older than the lock file. No install scripts: esbuild
# runs from its platform package without its postinstall step.
stamp="$client/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$client/package-lock.json" -nt "$stamp" ]; then
  (cd "$client" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
fi
