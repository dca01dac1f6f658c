"""Run the conformance suite as a user does, in a subprocess, and read its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_estuary.conformance_cli import CONFIG_FILE, suite_dir
from pytest_estuary.fixtures import FAKE_ONLY_REASON
from pytest_estuary.livekit_server import LiveKitCredentials

__all__ = ["CLIENT_CASES", "SuiteRun", "collect", "explain", "livekit_env", "run_suite", "verdict_sets"]

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
# The client cases (SEL, ERR, LIFE): they drive a client against the embedded fake.
CLIENT_CASES = [
    str(CONFORMANCE / name) for name in ("test_transport_selection.py", "test_error_codes.py", "test_lifecycle.py")
]


@dataclass
class SuiteRun:
    """One run of the suite: exit code, JSON report (None if none was written), output, seconds."""

    code: int
    report: dict[str, Any] | None
    output: str
    seconds: float

    def verdicts(self) -> dict[str, str]:
        """Test name (with parameters) → verdict."""
        assert self.report is not None, f"no report written; output:\n{self.output[-3000:]}"
        return {case["nodeid"].rsplit("::", 1)[-1]: case["verdict"] for case in self.report["cases"]}

    def cases(self) -> list[dict[str, Any]]:
        assert self.report is not None, f"no report written; output:\n{self.output[-3000:]}"
        cases: list[dict[str, Any]] = self.report["cases"]
        return cases


def run_suite(
    tmp: Path,
    *args: str,
    nodes: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 600,
    name: str = "report",
) -> SuiteRun:
    """The suite as a user runs it, ``estuary-conformance ARGS``, with a JSON and a Markdown report
    in ``tmp``; with ``nodes``, only those test IDs, in that order (same config, same rootdir)."""
    report = tmp / f"{name}.json"
    reports = ["--estuary-report", str(report), "--estuary-report-md", str(tmp / f"{name}.md")]
    if nodes:
        suite = suite_dir()
        command = [
            sys.executable, "-m", "pytest", "-c", str(CONFIG_FILE), f"--rootdir={suite.parent}",
            "-p", "no:cacheprovider", "-q", *reports, *args, *nodes,
        ]  # fmt: skip
    else:
        command = [sys.executable, "-c", CLI, "-q", *reports, *args]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, cwd=tmp
    )
    loaded = json.loads(report.read_text()) if report.exists() else None
    return SuiteRun(result.returncode, loaded, result.stdout + result.stderr, time.monotonic() - started)


CLI = "from pytest_estuary.conformance_cli import main; raise SystemExit(main())"  # estuary-conformance


def collect(*paths: str) -> list[str]:
    """The node IDs of the installed suite (or of ``paths`` in it), collected with the suite's own
    config, as absolute paths that can be passed back in any order."""
    suite = suite_dir()
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(CONFIG_FILE), f"--rootdir={suite.parent}", "-p", "no:cacheprovider",
         "--collect-only", "-q", *(paths or [str(suite)])],
        capture_output=True, text=True, cwd=suite.parent, timeout=120,
    )  # fmt: skip
    ids = [line for line in listing.stdout.splitlines() if line.startswith("conformance/") and "::" in line]
    assert ids, f"no case collected (exit {listing.returncode}):\n{listing.stdout[-2000:]}{listing.stderr[-2000:]}"
    return [str(suite.parent / node) for node in ids]


def livekit_env(creds: LiveKitCredentials) -> dict[str, str]:
    """The environment that points a suite run's embedded fake at the session's LiveKit server."""
    return {"LIVEKIT_URL": creds.url, "LIVEKIT_API_KEY": creds.api_key, "LIVEKIT_API_SECRET": creds.api_secret}


# A failed proof's message is cut from the top when CI shows it: the verdicts that matter come first.
_WORST_FIRST = ("ERROR", "FAIL", "NON-STRICT", "BLOCKED", "SKIPPED")


def explain(run: SuiteRun) -> str:
    """Every case that did not PASS, one line each, worst verdict first; the cases a live run
    cannot have (they need the embedded fake) are counted, not listed."""
    if run.report is None:
        return f"{run.seconds:.0f} s, exit {run.code}, no report:\n{run.output[-3000:]}"
    shown = [c for c in run.cases() if c["verdict"] != "PASS" and FAKE_ONLY_REASON not in (c["reason"] or "")]
    shown.sort(key=lambda c: _WORST_FIRST.index(c["verdict"]) if c["verdict"] in _WORST_FIRST else -1)
    lines = [f"{c['id']} {c['verdict']} {c['nodeid'].rsplit('::', 1)[-1]}: {(c['reason'] or '')[:400]}" for c in shown]
    fake_only = sum(FAKE_ONLY_REASON in (c["reason"] or "") for c in run.cases())
    head = f"{run.seconds:.0f} s, exit {run.code}, {fake_only} cases skipped as embedded-only"
    return "\n".join([head, *lines])


def verdict_sets(run: SuiteRun) -> dict[str, set[str]]:
    """Verdict → the requirement IDs that got it (an ID with several tests can be in several sets)."""
    found: dict[str, set[str]] = {}
    for case in run.cases():
        found.setdefault(case["verdict"], set()).add(case["id"])
    return found
