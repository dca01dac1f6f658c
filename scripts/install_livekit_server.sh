#!/usr/bin/env bash
# Build livekit-server (pinned) into the pytest-estuary cache and print its path; a no-op when it
# is there. The work is done by the package's own command, `estuary-livekit install`; this script
# finds that command in the project's venv, on PATH, or runs the module from this checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ -x "$root/.venv/bin/estuary-livekit" ]; then
  exec "$root/.venv/bin/estuary-livekit" install
elif command -v estuary-livekit >/dev/null 2>&1; then
  exec estuary-livekit install
fi
# Not installed as a command (yet): run the module from this checkout; it needs only the standard
# library and pytest (which the package's __init__ imports).
python="${PYTHON:-python3}"
[ -x "$root/.venv/bin/python" ] && python="$root/.venv/bin/python"
cd "$root"
exec "$python" -c 'import sys; from pytest_estuary.livekit_install import main; sys.exit(main(["install"]))'
