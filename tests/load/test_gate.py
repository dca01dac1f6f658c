"""The gate: a requirement broken under load is a failure named by its ID and a non-zero exit; a
percentile over its --max bound fails too (the bound logic is checked on the final stats' format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from load_runs import estuary_load
from standalone_fakes import StandaloneFakes

from pytest_estuary.load.gate import PERCENTILES, evaluate, parse_bound, read_final


def test_no_livekit_ready_under_load_fails_the_gate_with_lk_5(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake({"no_livekit_ready": True})
    run = estuary_load(server["url"], server["api_key"], tmp_path,
                       "-u", "2", "-r", "2", "-t", "12s", "--transport-mix", "livekit=1")  # fmt: skip
    assert run.status == 1, f"{run.status}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    failures = run.failures()
    assert failures and all(message.startswith("LK-5: ") and name == "livekit_ready" for name, message, _ in failures)
    assert "5 s (ready_timeout)" in failures[0][1]
    assert sum(count for *_, count in failures) == run.stats()["livekit_ready"].failures  # every one counted
    gate = run.gate()
    assert gate["ok"] is False and set(gate["violations"]) == {"LK-5"}
    summary = (tmp_path / "summary.md").read_text()
    assert "**Gate: FAILED**" in summary and "| LK-5 |" in summary


def _final(tmp_path: Path, p99_seconds: float, failures: list[list[object]] | None = None) -> Path:
    """A final_stats.json as the Locust file writes it."""
    ready = {key: 0.04 for key in PERCENTILES} | {"p99": p99_seconds, "p99.9": p99_seconds, "p100": p99_seconds}
    document = {
        "phases": {
            "livekit_ready": {"requests": 10, "failures": 0, "percentiles": ready},
            "disconnect": {"requests": 10, "failures": 0, "percentiles": {key: 0.001 for key in PERCENTILES}},
        },
        "failures": failures or [],
    }
    path = tmp_path / "final_stats.json"
    path.write_text(json.dumps(document))
    return path


def test_a_percentile_over_its_bound_fails_the_gate(tmp_path: Path) -> None:
    bound = parse_bound("p99:livekit_ready=5s")
    assert evaluate(*read_final(_final(tmp_path, 4.9)), [bound]).ok
    over = evaluate(*read_final(_final(tmp_path, 5.1)), [bound])
    assert not over.ok and over.exceeded == ["p99:livekit_ready=5s: measured 5.1 s over 10 requests"]
    assert not evaluate(*read_final(_final(tmp_path, 0.01)), [parse_bound("p50:bot_track=100ms")]).ok  # no sample


def test_failures_are_counted_by_requirement_id(tmp_path: Path) -> None:
    failures: list[list[object]] = [
        ["livekit_ready", "LK-5: timed out", 3],
        ["session", "ERROR: the session engine exited", 1],
        ["stt_final", "LK-7: crossed", 2],
    ]
    gate = evaluate(*read_final(_final(tmp_path, 0.01, failures)), [])
    assert not gate.ok and gate.violations == {"LK-5": 3, "ERROR": 1, "LK-7": 2}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("p99:livekit_ready=5", "expected PERCENTILE:PHASE=NUMBER(s|ms)"),
        ("p97:livekit_ready=5s", "percentile 'p97' is not one Locust reports"),
        ("p99:ready=5s", "unknown phase 'ready'"),
        ("p99:livekit_ready=0s", "must be above 0"),
    ],
)
def test_bad_bounds_are_refused_naming_the_part(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"--max") as error:
        parse_bound(spec)
    assert says in str(error.value)
