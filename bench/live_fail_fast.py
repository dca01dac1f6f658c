"""Benchmark: how fast a live conformance run ends when the target cannot be tested, and how long
the whole live suite takes against a server that breaks one requirement. Prints JSON.

Run inside the namespace: scripts/isolated_run.sh .venv/bin/python bench/live_fail_fast.py
Targets (design.md): wrong key and nothing listening ≤ 15 s each (one ERROR with its diagnosis);
a standalone fake with no_livekit_ready ≤ 90 s for the whole suite.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from standalone_fakes import StandaloneFakes

from pytest_estuary.livekit_server import LiveKitServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "proofs"))
from live_runs import run_suite

TARGETS = {"wrong_key": 15.0, "nothing_listening": 15.0, "no_livekit_ready": 90.0}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _measure(name: str, url: str, key: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        run = run_suite(Path(tmp), "--estuary-live", "--estuary-url", url, env={"ESTUARY_API_KEY": key})
    counts = run.report["summary"]["counts"] if run.report else None
    first_error = next((c["reason"] for c in (run.report or {}).get("cases", []) if c["verdict"] == "ERROR"), None)
    return {
        "seconds": round(run.seconds, 2),
        "target_seconds": TARGETS[name],
        "met": run.seconds <= TARGETS[name],
        "exit_code": run.code,
        "counts": {k: v for k, v in (counts or {}).items() if v},
        "failed": sorted({c["id"] for c in (run.report or {}).get("cases", []) if c["verdict"] == "FAIL"}),
        "diagnosis": first_error,
    }


def main() -> None:
    livekit = LiveKitServer()
    creds = livekit.start()
    fakes = StandaloneFakes(creds)
    try:
        good = fakes.start()
        broken = fakes.start({"no_livekit_ready": True}, ["hello estuary", "what is the weather today"] * 2)
        results = {
            "wrong_key": _measure("wrong_key", good["url"], "not-the-key"),
            "nothing_listening": _measure("nothing_listening", f"http://127.0.0.1:{_free_port()}", "any-key"),
            "no_livekit_ready": _measure("no_livekit_ready", broken["url"], broken["api_key"]),
        }
    finally:
        fakes.stop_all()
        livekit.stop()
    print(json.dumps({"bench": "live_fail_fast", "cpus": os.cpu_count(), "runs": results}, indent=2))


if __name__ == "__main__":
    main()
