"""The LiveKit server manager: attach without spawning, named errors, no orphans."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer, LiveKitServerError


def livekit_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "livekit-server":
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def test_attaching_to_an_external_server_spawns_nothing(livekit_server: LiveKitCredentials) -> None:
    before = livekit_pids()
    manager = LiveKitServer(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret=livekit_server.api_secret
    )
    with manager as creds:
        assert creds.source == "external"
        assert creds.url == livekit_server.url
        assert not manager.owns_process and manager.pid is None
        assert livekit_pids() == before


def test_missing_binary_names_every_place_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYTEST_ESTUARY_CACHE", str(tmp_path / "cache"))
    for name in ("LIVEKIT_URL", "LIVEKIT_SERVER_BIN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(allow_docker=False).start()
    message = str(failure.value)
    for place in ("LIVEKIT_URL", "LIVEKIT_SERVER_BIN", "'livekit-server' on PATH", str(tmp_path / "cache"), "docker"):
        assert place in message, f"{place!r} missing from: {message}"
    assert "bash scripts/install_livekit_server.sh" in message


def test_explicit_bad_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(LiveKitServerError, match="does not exist or is not executable"):
        LiveKitServer(binary=tmp_path / "nope", env={}).start()


def test_external_url_without_credentials_is_named() -> None:
    with pytest.raises(LiveKitServerError, match="LIVEKIT_API_KEY and LIVEKIT_API_SECRET"):
        LiveKitServer(url="ws://127.0.0.1:9", env={}).start()


def test_binary_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "livekit-server"
    fake.write_text("#!/bin/sh\necho 'could not listen: address already in use'\nexit 0\n")
    fake.chmod(0o755)
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(binary=fake, env={}).start()
    assert "exited with status 0 before it was ready (port in use)" in str(failure.value)
    assert "address already in use" in str(failure.value)


def test_secrets_stay_out_of_repr(livekit_server: LiveKitCredentials) -> None:
    assert livekit_server.api_secret not in repr(livekit_server)
    assert livekit_server.api_secret not in str(livekit_server)


def test_killing_the_owner_leaves_no_livekit_server(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from pytest_estuary.livekit_server import LiveKitServer
        manager = LiveKitServer()
        manager.start()
        print(manager.pid, flush=True)
        time.sleep(120)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert pid in livekit_pids()
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 5
        while pid in livekit_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid not in livekit_pids(), f"livekit-server {pid} outlived its killed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
        if owner.stdout is not None:
            owner.stdout.close()
