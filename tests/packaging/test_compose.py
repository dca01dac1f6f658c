"""The Docker fallback's compose file: shipped in the package, without node_ip, and its livekit-server
config accepted by the pinned binary (no Docker engine needed for that part)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_estuary.livekit_server import LIVEKIT_SERVER_VERSION, LiveKitServer, cached_binary_path

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ROOT / "docker-compose.livekit.yml"


def livekit_config_body(compose: str) -> str:
    """The ``LIVEKIT_CONFIG: |`` block scalar of the compose file, dedented."""
    lines = compose.split("LIVEKIT_CONFIG: |\n", 1)[1].splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    body = []
    for line in lines:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line)
    return textwrap.dedent("\n".join(body)) + "\n"


def test_the_package_data_copy_is_the_compose_file_the_manager_uses() -> None:
    shipped = LiveKitServer.compose_file()
    assert shipped.is_file(), f"{shipped} is missing"
    assert shipped.parent.name == "data" and shipped.parent.parent.name == "pytest_estuary"
    assert shipped.read_text() == TOP_LEVEL.read_text(), "the two compose files drifted apart"


def test_the_compose_file_sets_no_node_ip_and_pins_the_version() -> None:
    compose = TOP_LEVEL.read_text()
    assert "--node-ip" not in compose and "LIVEKIT_NODE_IP" not in compose
    assert "node_ip" not in livekit_config_body(compose)
    assert f"livekit/livekit-server:{LIVEKIT_SERVER_VERSION}" in compose
    assert '"127.0.0.1:${LIVEKIT_HTTP_PORT:-7880}:7880/tcp"' in compose, "signalling must be published on loopback"


READY_PROBE = """
import os, subprocess, sys, time, urllib.request
server = subprocess.Popen([sys.argv[1]], stdout=open(sys.argv[2], "wb"), stderr=subprocess.STDOUT)
deadline = time.monotonic() + 15
try:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"livekit-server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen("http://127.0.0.1:7880/", timeout=0.5) as answer:
                if answer.status == 200:
                    sys.exit(0)
        except OSError:
            time.sleep(0.05)
    sys.exit("livekit-server not ready on 127.0.0.1:7880 within 15 s")
finally:
    server.kill()  # only the config was on trial; a graceful stop drains for seconds
    server.wait(10)
"""


def test_the_pinned_livekit_server_accepts_the_compose_files_config(tmp_path: Path) -> None:
    """Run as the container would: LIVEKIT_CONFIG and LIVEKIT_KEYS in the environment, fixed ports,
    in a network namespace of its own with loopback plus one address (the container's eth0)."""
    binary = os.environ.get("LIVEKIT_SERVER_BIN") or shutil.which("livekit-server") or str(cached_binary_path())
    if not Path(binary).is_file():
        pytest.fail(f"no livekit-server binary at {binary}: run 'estuary-livekit install'")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("this test needs unshare and ip (util-linux, iproute2) for a namespace of its own")
    env = {
        **os.environ,
        "LIVEKIT_CONFIG": livekit_config_body(TOP_LEVEL.read_text()),
        "LIVEKIT_KEYS": "devkey: " + "s" * 40,
    }
    log = tmp_path / "livekit-server.log"
    setup = (
        "ip link set lo up && ip link add c0 type veth peer name c1 "
        "&& ip addr add 10.231.0.2/24 dev c0 && ip link set c0 up && ip link set c1 up"
    )
    command = ["unshare", "-n", "--", "sh", "-c", f'{setup} && exec "$@"', "sh", sys.executable, "-c", READY_PROBE]
    done = subprocess.run([*command, binary, str(log)], env=env, capture_output=True, text=True, timeout=60)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "<no log>"
    assert done.returncode == 0, f"{done.stderr.strip()}\nlivekit-server's log:\n{tail}"
