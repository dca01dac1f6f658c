"""The conformance suite, run in live mode against standalone fake servers, passes a good server and
fails a broken one on exactly the matching case IDs (issue 6: proof that the suite catches bugs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The shipped utterances, in the order the live-capable speech cases say them (LK-7, then WS-2 twice).
SPOKEN = ["hello estuary", "what is the weather today", "what is the weather today"]


def run_live_suite(server: dict[str, Any], tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """The conformance suite in live mode against ``server``; returns (exit code, JSON report, output)."""
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-q",
        "--estuary-live", "--estuary-url", server["url"], "--estuary-timeout", "4",
        "--estuary-report", str(report), *args,
    ]  # fmt: skip
    env = {**os.environ, "ESTUARY_API_KEY": server["api_key"]}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    output = result.stdout + result.stderr
    assert report.exists(), f"no report written; output:\n{output[-3000:]}"
    return result.returncode, json.loads(report.read_text()), output


def verdicts(report: dict[str, Any]) -> dict[str, set[str]]:
    by_verdict: dict[str, set[str]] = {}
    for case in report["cases"]:
        by_verdict.setdefault(case["verdict"], set()).add(case["id"])
    return by_verdict


def test_good_server_passes_every_live_case_and_fake_only_cases_are_skipped(
    standalone_fake: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    server = standalone_fake(transcripts=SPOKEN)
    code, report, output = run_live_suite(server, tmp_path)
    assert code == 0, output[-4000:]
    assert report["run"]["mode"] == "live"
    not_passed = [c for c in report["cases"] if c["verdict"] in ("FAIL", "ERROR", "NON-STRICT")]
    assert not not_passed, [(c["id"], c["verdict"], c["reason"]) for c in not_passed]
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
    standalone_fake: Callable[..., dict[str, Any]],
    tmp_path: Path,
    misbehave: dict[str, Any],
    selection: str,
    must_fail: set[str],
    may_fail: set[str],
) -> None:
    server = standalone_fake(misbehave=misbehave)
    code, report, output = run_live_suite(server, tmp_path, "-k", selection)
    found = verdicts(report)
    failed = found.get("FAIL", set())
    assert code == 1, output[-3000:]
    assert must_fail <= failed, f"expected {sorted(must_fail)} to FAIL; verdicts {found}"
    assert failed <= must_fail | may_fail, f"unrelated cases failed: {sorted(failed - must_fail - may_fail)}"
    assert found.get("PASS"), f"the unaffected cases should still pass; verdicts {found}"
