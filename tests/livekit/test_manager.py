"""The LiveKit server manager: attach without spawning, named errors, no orphans, no leaked secrets."""

from __future__ import annotations

import itertools
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_estuary.livekit_server as livekit_server_module
from pytest_estuary.livekit_server import (
    OWNER_FILE,
    LiveKitCredentials,
    LiveKitServer,
    LiveKitServerError,
    cached_binary_path,
    remove_stale_workdirs,
)

SECRET = "s3cret-" + "x" * 40  # recognisable in any text it leaks into


def livekit_pids(parent: int | None = None) -> set[int]:
    """Running livekit-server processes (by /proc/PID/comm), only ``parent``'s children if given.

    Tests that count spawns look at this process's children: other xdist workers start their own.
    """
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "livekit-server":
                    continue
                status = (entry / "status").read_text()
            except OSError:
                continue  # exited while we looked
            if "State:\tZ" in status:
                continue  # a zombie is not a running server (another test's child, not yet reaped)
            ppid = int(status.split("PPid:")[1].split()[0])
            if parent is None or ppid == parent:
                pids.add(int(entry.name))
    return pids


def my_livekit_pids() -> set[int]:
    return livekit_pids(parent=os.getpid())


def test_attaching_to_an_external_server_spawns_nothing(livekit_server: LiveKitCredentials) -> None:
    before = my_livekit_pids()
    assert before, "the session's livekit-server (a child of this process) should be running"
    manager = LiveKitServer(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret=livekit_server.api_secret
    )
    with manager as creds:
        assert creds.source == "external"
        assert creds.url == livekit_server.url
        assert not manager.owns_process and manager.pid is None
        assert my_livekit_pids() == before
    assert my_livekit_pids() == before, "stopping an attached manager must not stop the external server"


def test_missing_binary_names_every_place_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYTEST_ESTUARY_CACHE", str(tmp_path / "cache"))
    for name in ("LIVEKIT_URL", "LIVEKIT_SERVER_BIN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(allow_docker=False).start()
    message = str(failure.value)
    for place in ("LIVEKIT_URL", "LIVEKIT_SERVER_BIN", "'livekit-server' on PATH", str(cached_binary_path()), "docker"):
        assert place in message, f"{place!r} missing from: {message}"
    assert "estuary-livekit install" in message, message


def test_explicit_bad_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(binary=tmp_path / "nope", env={}).start()
    message = str(failure.value)
    assert str(tmp_path / "nope") in message and "does not exist or is not executable" in message, message


def test_external_url_without_credentials_is_named() -> None:
    with pytest.raises(LiveKitServerError, match="LIVEKIT_API_KEY and LIVEKIT_API_SECRET"):
        LiveKitServer(url="ws://127.0.0.1:9", env={}).start()


def test_external_url_without_secret_names_only_the_secret() -> None:
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(url="ws://127.0.0.1:9", api_key="key", env={}).start()
    assert "but LIVEKIT_API_SECRET" in str(failure.value), failure.value


def test_unreachable_external_server_is_named_without_its_secret() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connection refused
        with pytest.raises(LiveKitServerError) as failure:
            LiveKitServer(url=f"ws://127.0.0.1:{port}", api_key="key", api_secret=SECRET, env={}).start()
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message and "does not answer" in message, message
    assert SECRET[:8] not in message and SECRET not in repr(failure.value)


@pytest.fixture
def busy_port() -> Iterator[tuple[socket.socket, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock, sock.getsockname()[1]


def test_http_port_in_use_is_named_with_the_servers_log(
    busy_port: tuple[socket.socket, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real binary, handed a taken HTTP port: it exits 0, so the manager must read its log."""
    _, port = busy_port
    real_free_port = livekit_server_module.free_port
    calls = itertools.count()
    # The manager picks its ports itself; the first one it asks for is the HTTP port.
    monkeypatch.setattr(
        livekit_server_module,
        "free_port",
        lambda *args, **kwargs: port if next(calls) == 0 else real_free_port(*args, **kwargs),
    )
    manager = LiveKitServer(env={})
    before = my_livekit_pids()
    with pytest.raises(LiveKitServerError) as failure:
        manager.start()
    message = str(failure.value)
    assert "before it was ready (port in use)" in message, message
    assert f"127.0.0.1:{port}: bind: address already in use" in message, message
    assert manager.config_text is not None
    secret = manager.config_text.split("keys:\n")[1].split(": ", 1)[1].strip()
    assert len(secret) >= 32 and secret not in message
    assert my_livekit_pids() <= before, "the failed server must not be left running"


def test_binary_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "livekit-server"
    fake.write_text("#!/bin/sh\necho 'could not listen: address already in use'\nexit 0\n")
    fake.chmod(0o755)
    with pytest.raises(LiveKitServerError) as failure:
        LiveKitServer(binary=fake, env={}).start()
    assert "exited with status 0 before it was ready (port in use)" in str(failure.value)
    assert "address already in use" in str(failure.value)


def test_secrets_stay_out_of_repr_and_str() -> None:
    creds = LiveKitCredentials("ws://127.0.0.1:1", "key", SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET[:8] not in text, text
    assert "s3cr…" in repr(creds)


def test_session_credentials_hide_their_secret(livekit_server: LiveKitCredentials) -> None:
    assert livekit_server.api_secret[4:] not in repr(livekit_server)
    assert livekit_server.api_secret[4:] not in str(livekit_server)


def read_line(stream: object, timeout: float, what: str) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout):
            raise AssertionError(f"waited {timeout:.0f} s for {what}; the owner printed nothing")
    return stream.readline()  # type: ignore[attr-defined, no-any-return]


def test_killing_the_owner_leaves_no_livekit_server() -> None:
    script = textwrap.dedent(
        """
        import time
        from pytest_estuary.livekit_server import LiveKitServer
        manager = LiveKitServer()
        manager.start()
        print(manager.pid, manager.log_path.parent, flush=True)
        time.sleep(120)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        line = read_line(owner.stdout, 20, "the owner to start livekit-server and print its pid")
        fields = line.split()
        assert len(fields) == 2 and fields[0].isdigit(), (
            f"owner printed {line!r}; stderr: {owner.stderr.read() if owner.stderr else ''}"
        )
        pid, workdir = int(fields[0]), Path(fields[1])
        assert pid in livekit_pids(), f"pid {pid} is not a livekit-server"
        owner.send_signal(signal.SIGKILL)  # no cleanup code of the owner can run
        owner.wait(10)
        deadline = time.monotonic() + 5
        while pid in livekit_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid not in livekit_pids(), f"livekit-server {pid} outlived its SIGKILLed owner by 5 s"
        # Its work dir (the config in it holds the API secret) stays behind until the next start.
        assert (workdir / "livekit.yaml").is_file()
        assert workdir in remove_stale_workdirs(workdir.parent) and not workdir.exists()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        for stream in (owner.stdout, owner.stderr):
            if stream is not None:
                stream.close()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait(5)
    return child.pid


def make_workdir(base: Path, name: str, owner: str | None, age: float = 0.0) -> Path:
    workdir = base / f"estuary-livekit-{name}"
    workdir.mkdir(mode=0o700)
    (workdir / "livekit.yaml").write_text(f"keys:\n  key: {SECRET}\n")
    if owner is not None:
        (workdir / OWNER_FILE).write_text(owner)
    if age:
        stamp = time.time() - age
        os.utime(workdir, (stamp, stamp))
    return workdir


def test_work_dirs_of_dead_owners_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    """A killed test process leaves its dir (its config holds the API secret): the next start removes it."""
    start_time = (Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split())[19]
    dead = make_workdir(tmp_path, "dead", f"{dead_pid()} 1")
    reused = make_workdir(tmp_path, "reused", f"{os.getpid()} {int(start_time) + 1}")  # same pid, other process
    alive = make_workdir(tmp_path, "alive", f"{os.getpid()} {start_time}")
    old_unowned = make_workdir(tmp_path, "old", None, age=3600)
    new_unowned = make_workdir(tmp_path, "new", None)  # may be a dir another process is making now
    removed = remove_stale_workdirs(tmp_path)
    assert sorted(removed) == sorted([dead, reused, old_unowned])
    assert not dead.exists() and not reused.exists() and not old_unowned.exists()
    assert alive.is_dir() and new_unowned.is_dir()


def test_a_start_removes_stale_work_dirs_and_records_its_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(livekit_server_module.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    stale = make_workdir(tmp_path, "stale", f"{dead_pid()} 1")
    fake = tmp_path / "livekit-server"
    fake.write_text(f'#!/bin/sh\ncp "$(dirname "$2")/{OWNER_FILE}" "{tmp_path}/seen-owner"\nsleep 30\n')
    fake.chmod(0o755)
    manager = LiveKitServer(binary=fake, env={}, ready_timeout=0.5)
    with pytest.raises(LiveKitServerError, match="not ready after"):
        manager.start()
    assert not stale.exists(), "the stale work dir (with its secret) was left behind"
    assert (tmp_path / "seen-owner").read_text().split()[0] == str(os.getpid()), "the work dir names no owner"
    left = list(tmp_path.glob("estuary-livekit-*"))
    assert left == [], f"a failed start must clean up its own work dir too: {left}"
