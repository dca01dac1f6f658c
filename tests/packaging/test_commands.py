"""The console commands: ``estuary-livekit install`` and ``estuary-conformance``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_estuary import conformance_cli, livekit_install
from pytest_estuary.livekit_server import LIVEKIT_SERVER_VERSION, cached_binary_path

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for the Go toolchain: records how it was called and "builds" a script named `server`.
FAKE_GO = """#!/bin/sh
printf '%s\\n' "$*" "CGO_ENABLED=$CGO_ENABLED" > "$FAKE_GO_RECORD"
printf '#!/bin/sh\\necho built\\n' > "$GOBIN/server"
/bin/chmod +x "$GOBIN/server"  # PATH holds only this fake
"""
FAILING_GO = """#!/bin/sh
echo "go: github.com/livekit/livekit-server@$1: reading module: connection refused"
exit 1
"""


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTEST_ESTUARY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "bin").mkdir()
    return tmp_path / "cache"


def put_go(directory: Path, script: str) -> None:
    go = directory / "go"
    go.write_text(script)
    go.chmod(0o755)


def test_install_builds_the_pinned_version_without_cgo_and_prints_the_path(
    empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    put_go(tmp_path / "bin", FAKE_GO)
    record = tmp_path / "go-called-with"
    monkeypatch.setenv("FAKE_GO_RECORD", str(record))
    assert livekit_install.main(["install"]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(cached_binary_path())
    assert cached_binary_path().is_relative_to(empty_cache) and os.access(cached_binary_path(), os.X_OK)
    assert "building livekit-server" in printed.err and LIVEKIT_SERVER_VERSION in printed.err
    called = record.read_text().splitlines()
    assert called == [f"install github.com/livekit/livekit-server/cmd/server@{LIVEKIT_SERVER_VERSION}", "CGO_ENABLED=0"]
    assert list(cached_binary_path().parent.glob("*.tmp.*")) == []


def test_install_is_a_no_op_when_the_binary_is_cached(empty_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = cached_binary_path()
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert livekit_install.main(["install"]) == 0  # no go on PATH: it must not be needed
    assert capsys.readouterr().out.strip() == str(binary)


def test_install_without_go_says_what_to_install_and_the_other_ways(
    empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert livekit_install.main(["install"]) == 1
    message = capsys.readouterr().err
    for needed in ("Go 1.21 or newer", "go.dev/doc/install", "LIVEKIT_URL", "LIVEKIT_SERVER_BIN", "Docker"):
        assert needed in message, f"{needed!r} missing from: {message}"
    assert not cached_binary_path().exists()


def test_a_failed_build_names_the_command_and_shows_its_output(
    empty_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_go(tmp_path / "bin", FAILING_GO)
    assert livekit_install.main(["install"]) == 1
    message = capsys.readouterr().err
    assert f"'go install github.com/livekit/livekit-server/cmd/server@{LIVEKIT_SERVER_VERSION}' failed" in message
    assert "connection refused" in message, message
    assert not cached_binary_path().exists()


def test_the_script_calls_the_command(empty_cache: Path) -> None:
    binary = cached_binary_path()
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    script = ROOT / "scripts" / "install_livekit_server.sh"
    assert "estuary-livekit" in script.read_text() and "install" in script.read_text()
    env = {**os.environ, "PATH": f"/usr/bin:/bin:{Path(sys.executable).parent}"}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(binary)


def test_conformance_command_line_runs_the_suite_by_path_with_its_own_config() -> None:
    suite = conformance_cli.suite_dir()
    assert suite == Path(conformance_cli.__file__).resolve().parent.parent / "conformance"
    line = conformance_cli.command_line(["-k", "wire", "--estuary-live"])
    assert line[-1] == str(suite) and line[-4:-1] == ["-k", "wire", "--estuary-live"]
    assert ["-p", "no:cacheprovider"] == line[:2]
    assert ["-c", str(conformance_cli.CONFIG_FILE)] == line[2:4] and f"--rootdir={suite.parent}" in line
    own = conformance_cli.command_line(["-c", "mine.ini", "--rootdir", "."])
    assert str(conformance_cli.CONFIG_FILE) not in own and not any(a.startswith("--rootdir=") for a in own)
    assert "asyncio_default_fixture_loop_scope = function" in conformance_cli.CONFIG_FILE.read_text()


def run_in(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_estuary_conformance_collects_the_suite_from_any_directory_even_with_warnings_as_errors(
    tmp_path: Path,
) -> None:
    done = run_in(
        tmp_path, sys.executable, "-m", "pytest_estuary.conformance_cli", "--collect-only", "-q", "-W", "error"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "conformance/test_wire.py::" in done.stdout and "INTERNALERROR" not in done.stdout + done.stderr
    assert not (tmp_path / ".pytest_cache").exists()


def test_pytest_pyargs_conformance_keeps_working(tmp_path: Path) -> None:
    done = run_in(tmp_path, sys.executable, "-m", "pytest", "--pyargs", "conformance", "--collect-only", "-q",
                  "-p", "no:cacheprovider")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "test_wire.py::" in done.stdout
