#!/usr/bin/env bash
# nginx (TLS-terminating reverse proxy) and tinyproxy (HTTP proxy) for tests/proofs/test_tls_proxy.py.
# Idempotent and quiet: a no-op when both are installed; apt-get update only when one is missing.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || need+=(tinyproxy)
[ "${#need[@]}" -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
"${sudo[@]}" apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The packages' own services are not ours: the tests start their own instances on free ports.
for service in nginx tinyproxy; do
  "${sudo[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
done
