"""The README example with the loopback configuration a user's machine gets (no LIVEKIT_NODE_IP).

A user runs pytest without ``scripts/isolated_run.sh``: livekit-server then listens, advertises and
points STUN at 127.0.0.1 only. Outside a namespace the network rule allows loopback only, so each
run here gets a network namespace of its own that stands in for such a machine:

- loopback plus one interface (a veth pair, both ends in that namespace), as every real machine
  has: the example passes. The LiveKit client (libwebrtc) gathers its candidates on that interface's
  address and reaches the server's 127.0.0.1 candidate; the packets stay inside the machine.
- loopback only: text and the fake server's controls work, LiveKit media does not. libwebrtc
  gathers no candidate on a loopback interface, so the room connect times out (CONNECTION_FAILED).

A second test file in the same session reads the config of the livekit-server that served it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_voice_app.py"
EXAMPLE_TESTS = len(re.findall(r"^(?:async )?def test_", EXAMPLE.read_text(), re.MULTILINE))
INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"

CONFIG_CHECK = '''
"""The livekit-server of this session: configured for loopback, on a machine with loopback only."""

import os
import re
from pathlib import Path


def my_livekit_config() -> str:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "livekit-server":
                continue
            if int((entry / "status").read_text().split("PPid:")[1].split()[0]) != os.getpid():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\\0")
        except OSError:
            continue
        return Path(argv[argv.index(b"--config") + 1].decode()).read_text()
    raise AssertionError("no livekit-server child of this pytest process")


def test_the_machine_has_the_interfaces_given() -> None:
    import socket

    assert sorted(name for _, name in socket.if_nameindex()) == sorted(os.environ["EXPECTED_INTERFACES"].split())


def test_livekit_server_uses_loopback_only(livekit_server) -> None:
    config = my_livekit_config()
    assert set(re.findall(r"\\d+\\.\\d+\\.\\d+\\.\\d+", config)) == {"127.0.0.1"}, config
    assert "node_ip: 127.0.0.1" in config and "      - 127.0.0.1/32" in config, config
    assert re.search(r"stun_servers:\\n    - 127\\.0\\.0\\.1:\\d+\\n", config), config
    assert "use_external_ip: false" in config and "enabled: false" in config, config
'''


LOOPBACK_ONLY = "ip link set lo up"
WITH_ONE_INTERFACE = (
    "ip link set lo up && ip link add e0 type veth peer name e1 "
    "&& ip addr add 10.232.0.1/24 dev e0 && ip link set e0 up && ip link set e1 up"
)


def run_example(directory: Path, setup: str, interfaces: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The README example plus the config check, by pytest in a new network namespace set up by ``setup``."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("this test needs unshare and ip (util-linux, iproute2) for a namespace of its own")
    (directory / "pytest.ini").write_text(INI)
    (directory / EXAMPLE.name).write_text(EXAMPLE.read_text())
    (directory / "test_loopback_config.py").write_text(CONFIG_CHECK)
    drop = ("LIVEKIT_NODE_IP", "ESTUARY_IN_NETNS", "ESTUARY_NETNS_INTERFACES", "PYTEST_ADDOPTS", "LIVEKIT_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["EXPECTED_INTERFACES"] = interfaces
    unshare = ["unshare", "-n"] if os.getuid() == 0 else ["unshare", "-r", "-n"]
    command = [*unshare, "--", "sh", "-c", f'{setup} && exec "$@"', "sh",
               sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args]  # fmt: skip
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_readme_example_passes_with_the_loopback_config(tmp_path: Path) -> None:
    done = run_example(tmp_path, WITH_ONE_INTERFACE, "lo e0 e1")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert f"{EXAMPLE_TESTS + 2} passed" in output, output[-3000:]


def test_with_loopback_only_livekit_media_cannot_connect(tmp_path: Path) -> None:
    """What the README says of a machine with nothing but lo (it keeps that sentence true)."""
    done = run_example(tmp_path, LOOPBACK_ONLY, "lo", "-k", "voice_round_trip or loopback or text_chat")
    output = done.stdout + done.stderr
    assert "FAILED test_voice_app.py::test_voice_round_trip_over_livekit" in output, output[-5000:]
    assert "CONNECTION_FAILED" in output, output[-5000:]
    assert "3 passed" in output and "1 failed" in output, output[-3000:]
