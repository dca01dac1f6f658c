"""Bad input to estuary-load: exit 2 and one line naming the option and what it expects; an
untestable target ends at the preflight (exit 3) before any Locust user starts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from load_runs import estuary_load
from standalone_fakes import StandaloneFakes

from pytest_estuary.load import cli

GOOD = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("url", "key", "args", "says"),
    [
        (GOOD, "k", ["--max", "p99:livekit_ready=five"], "--max 'p99:livekit_ready=five': expected"),
        (GOOD, "k", ["--max", "p42:livekit_ready=5s"], "percentile 'p42'"),
        (GOOD, "k", ["--transport-mix", "text=1,carrier_pigeon=2"], "--transport-mix: unknown kind 'carrier_pigeon'"),
        (GOOD, "k", ["--transport-mix", "text=0"], "gives no kind a weight above 0"),
        (GOOD, "k", ["--users", "0"], "--users: expected a whole number above 0, got '0'"),
        (GOOD, "k", ["--run-time", "soon"], "--run-time: expected a duration like 90s"),
        (GOOD, "k", ["--steps", "4,2"], "--steps: expected increasing session counts"),
        ("ftp://example", "k", [], "--estuary-url: expected an http(s):// or ws(s):// URL"),
        (GOOD, None, [], "ESTUARY_API_KEY: the API key must be set"),
        (GOOD, "k", ["--master", "--worker"], "--master and --worker: choose one"),
    ],
)
def test_bad_input_is_refused_naming_the_option(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    key: str | None,
    args: list[str],
    says: str,
) -> None:
    # In-process: the command's own main(), which imports no Locust (the real runs are subprocesses).
    monkeypatch.delenv("ESTUARY_URL", raising=False)
    if key is None:
        monkeypatch.delenv("ESTUARY_API_KEY", raising=False)
    else:
        monkeypatch.setenv("ESTUARY_API_KEY", key)
    status = cli.main(["--estuary-url", url, "--out", str(tmp_path / "out"), *args])
    stderr = capsys.readouterr().err
    assert status == cli.EXIT_BAD_INPUT, stderr
    assert stderr.startswith("estuary-load: ") and says in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unreachable_target_ends_at_the_preflight_before_any_user(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    run = estuary_load(f"http://127.0.0.1:{port}", "est-key", tmp_path, "-u", "5", "-t", "60s", timeout=30)
    assert run.status == 3, run.stderr
    assert time.monotonic() - started < 15
    assert f"target unreachable: connection refused at 127.0.0.1:{port}" in run.stderr
    assert not (tmp_path / "locust_stats.csv").exists()  # Locust never started
    assert "**Gate: FAILED**" in (tmp_path / "summary.md").read_text()


def test_refused_key_ends_at_the_preflight(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake()
    run = estuary_load(server["url"], "est-not-the-key", tmp_path, "-u", "5", "-t", "60s", timeout=30)
    assert run.status == 3, run.stderr
    assert "the API key was refused" in run.stderr and "est-not-the-key" not in run.stderr
    assert not (tmp_path / "locust_stats.csv").exists()
