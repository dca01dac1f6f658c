"""The conformance suite, run in live mode against standalone fake servers, passes a good server and
fails a broken one on exactly the matching case IDs (issue 6: proof that the suite catches bugs)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials

STARTUP_TIMEOUT = 20.0
# The shipped utterances, in the order the live-capable speech cases say them (LK-7, then WS-2 twice).
SPOKEN = ["hello estuary", "what is the weather today", "what is the weather today"]

Standalone = Callable[..., dict[str, Any]]


@pytest.fixture
def standalone(livekit_server: LiveKitCredentials) -> Iterator[Standalone]:
    """Starts ``python -m fake_server`` processes (misbehaving as asked); stops them all at teardown."""
    processes: list[subprocess.Popen[str]] = []

    def start(misbehave: dict[str, Any] | None = None, transcripts: list[str] | None = None) -> dict[str, Any]:
        command = [
            sys.executable, "-m", "fake_server",
            "--livekit-url", livekit_server.url,
            "--livekit-api-key", livekit_server.api_key,
            "--livekit-api-secret", livekit_server.api_secret,
            "--misbehave", json.dumps(misbehave or {}),
            "--transcripts", json.dumps(transcripts or []),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None
        line = _readline(process, STARTUP_TIMEOUT)
        info: dict[str, Any] = json.loads(line)
        return info

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise AssertionError(f"python -m fake_server printed nothing within {timeout:.0f} s")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"python -m fake_server exited: {process.wait(5)}; stderr: {process.stderr.read() if process.stderr else ''}")
    return line


def run_live_suite(server: dict[str, Any], tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """The conformance suite in live mode against ``server``; returns (exit code, JSON report, output)."""
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-q",
        "--estuary-live", "--estuary-url", server["url"], "--estuary-timeout", "4",
        "--estuary-report", str(report), *args,
    ]  # fmt: skip
    env_key = {"ESTUARY_API_KEY": server["api_key"]}
    import os

    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env_key}, timeout=600)
    output = result.stdout + result.stderr
    assert report.exists(), f"no report written; output:\n{output[-3000:]}"
    return result.returncode, json.loads(report.read_text()), output


def verdicts(report: dict[str, Any]) -> dict[str, set[str]]:
    by_verdict: dict[str, set[str]] = {}
    for case in report["cases"]:
        by_verdict.setdefault(case["verdict"], set()).add(case["id"])
    return by_verdict


def test_good_server_passes_every_live_case_and_fake_only_cases_are_skipped(
    standalone: Standalone, tmp_path: Path
) -> None:
    server = standalone(transcripts=SPOKEN)
    code, report, output = run_live_suite(server, tmp_path)
    found = verdicts(report)
    assert code == 0, output[-4000:]
    assert report["run"]["mode"] == "live"
    assert not found.get("FAIL") and not found.get("ERROR") and not found.get("NON-STRICT"), found
    skipped = [c for c in report["cases"] if c["verdict"] == "SKIPPED"]
    assert skipped, "the fake-only cases must be reported as skipped"
    assert all("not available with --estuary-live" in (c["reason"] or "") for c in skipped), skipped
    assert server["api_key"] not in json.dumps(report)


BROKEN = [
    # (misbehaviour, cases selected, IDs that must FAIL, IDs that may also fail)
    ({"no_livekit_ready": True}, "lk_1_ or lk_5 or lk_4", {"LK-5"}, set()),
    ({"ready_wrong_room": True}, "lk_1_ or lk_5 or lk_2", {"LK-5"}, set()),
    ({"token_other_room": True}, "lk_1_ or lk_2 or lk_3 or lk_4", {"LK-2", "LK-3"}, set()),
    ({"no_argument_events": True}, "wire_1 or conn_1", {"WIRE-1"}, set()),
    ({"token_expired": True}, "lk_1_ or lk_2 or lk_4", {"LK-2"}, {"LK-4"}),
]


@pytest.mark.parametrize(("misbehave", "selection", "must_fail", "may_fail"), BROKEN, ids=lambda v: str(v)[:40])
def test_broken_server_fails_the_matching_cases(
    standalone: Standalone,
    tmp_path: Path,
    misbehave: dict[str, Any],
    selection: str,
    must_fail: set[str],
    may_fail: set[str],
) -> None:
    server = standalone(misbehave=misbehave)
    code, report, output = run_live_suite(server, tmp_path, "-k", selection)
    found = verdicts(report)
    failed = found.get("FAIL", set())
    assert code == 1, output[-3000:]
    assert must_fail <= failed, f"expected {sorted(must_fail)} to FAIL; verdicts {found}"
    assert failed <= must_fail | may_fail, f"unrelated cases failed: {sorted(failed - must_fail - may_fail)}"
    assert found.get("PASS"), f"the unaffected cases should still pass; verdicts {found}"
