#!/usr/bin/env bash
# Run a command inside a private network namespace: lo plus one veth pair, no route out.
# WebRTC ignores loopback candidates, so media needs a real interface; this one leads nowhere.
# Usage: scripts/isolated_run.sh COMMAND [ARG...]
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/isolated_run.sh COMMAND [ARG...]" >&2
  exit 2
fi

NODE_IP="${ESTUARY_NETNS_NODE_IP:-10.213.0.1}"
PEER_IP="${ESTUARY_NETNS_PEER_IP:-10.213.0.2}"

if [ "${ESTUARY_IN_NETNS:-}" = "1" ]; then
  exec "$@"   # already isolated (nested call)
fi
if [ "$(id -u)" -ne 0 ] && ! unshare -rn true 2>/dev/null; then
  echo "isolated_run: needs root (or unprivileged user namespaces) to create a network namespace" >&2
  exit 2
fi

unshare_flags=(-n)
[ "$(id -u)" -ne 0 ] && unshare_flags=(-r -n)

exec unshare "${unshare_flags[@]}" -- bash -c '
  set -euo pipefail
  ip link set lo up
  ip link add estuary0 type veth peer name estuary1
  ip addr add "$1/24" dev estuary0
  ip addr add "$2/24" dev estuary1
  ip link set estuary0 up
  ip link set estuary1 up
  export ESTUARY_IN_NETNS=1 ESTUARY_NETNS_INTERFACES="lo estuary0 estuary1"
  export LIVEKIT_NODE_IP="$1"
  shift 2
  exec "$@"
' isolated_run "$NODE_IP" "$PEER_IP" "$@"
