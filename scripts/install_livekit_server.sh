#!/usr/bin/env bash
# Build livekit-server (pinned) from the Go module proxy into the pytest-estuary cache.
# Does nothing when the binary is already there. Prints the binary's path on success.
set -euo pipefail

VERSION="${LIVEKIT_SERVER_VERSION:-v1.13.5}"
CACHE="${PYTEST_ESTUARY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-estuary}"
DEST_DIR="$CACHE/livekit-server-$VERSION"
DEST="$DEST_DIR/livekit-server"

if [ -x "$DEST" ]; then
  echo "$DEST"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install_livekit_server: the Go toolchain ('go') is not on PATH; install Go >= 1.23 and retry" >&2
  exit 2
fi

build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
echo "install_livekit_server: building livekit-server $VERSION with $(go version) (first run only, a few minutes)" >&2
if ! CGO_ENABLED=0 GOBIN="$build_dir" GOFLAGS=-mod=mod \
    go install "github.com/livekit/livekit-server/cmd/server@$VERSION" >"$build_dir/build.log" 2>&1; then
  echo "install_livekit_server: 'go install github.com/livekit/livekit-server/cmd/server@$VERSION' failed" >&2
  echo "  (GOPROXY=$(go env GOPROXY)); last lines of its output:" >&2
  tail -n 20 "$build_dir/build.log" >&2
  exit 3
fi
mkdir -p "$DEST_DIR"
mv "$build_dir/server" "$DEST.tmp.$$"
mv "$DEST.tmp.$$" "$DEST"   # atomic: a concurrent run never sees half a binary
echo "$DEST"
