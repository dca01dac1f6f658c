#!/usr/bin/env bash
# What the HTML report's browser tests and the GitHub Action's checks need beyond `.[test]`:
# Debian's Chromium (Playwright drives it; no browser download), shellcheck (actionlint checks the
# run: scripts with it) and actionlint, built once from the Go module proxy into the pytest-estuary
# cache. Quiet, and a fast no-op when all three are there.
set -euo pipefail
ACTIONLINT_VERSION="v1.7.12"
cache="${PYTEST_ESTUARY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-estuary}"
actionlint="$cache/actionlint-$ACTIONLINT_VERSION"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$actionlint" ]; then
  command -v go >/dev/null 2>&1 || { echo "install_report_tools.sh: Go is needed to build actionlint" >&2; exit 1; }
  mkdir -p "$cache"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  GOBIN="$work" CGO_ENABLED=0 go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >/dev/null
  mv "$work/actionlint" "$actionlint"
fi
