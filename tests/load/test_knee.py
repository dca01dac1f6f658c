"""The knee's arithmetic: a step is judged by the difference of two cumulative snapshots."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_estuary.load.knee import find_knee, percentile, step_result, write_knee


def snapshot(ready: dict[int, int], failures: int = 0, errors: dict[str, int] | None = None) -> dict[str, object]:
    return {"phases": {"livekit_ready": (ready, failures)}, "errors": errors or {}}


def test_percentile_of_a_histogram() -> None:
    assert percentile({10: 98, 20: 1, 6000: 1}, 0.99) == 20.0
    assert percentile({10: 98, 20: 1, 6000: 1}, 1.0) == 6000.0
    assert percentile({}, 0.5) is None


def test_a_step_counts_only_its_own_requests_against_the_requirement_bound() -> None:
    first = snapshot({10: 50})
    second = snapshot({10: 60, 5200: 40})  # this step: 10 at 10 ms, 40 at 5.2 s
    step = step_result(4, 30.0, first, second)
    assert step.phases["livekit_ready"] == {"requests": 50, "failures": 0, "p50_ms": 5200.0, "p99_ms": 5200.0}
    assert not step.holds and step.why_not == ["livekit_ready p99 5200 ms > 5 s (LK-5)"]
    assert step_result(2, 30.0, snapshot({}), first).holds


def test_a_violation_in_the_step_breaks_it_and_the_knee_is_the_last_step_that_held(tmp_path: Path) -> None:
    steps = [
        step_result(2, 30.0, snapshot({}), snapshot({10: 20})),
        step_result(4, 30.0, snapshot({10: 20}), snapshot({10: 40})),
        step_result(8, 30.0, snapshot({10: 40}), snapshot({10: 60}, 1, {"livekit_ready: LK-5: timed out": 1})),
        step_result(16, 30.0, snapshot({10: 60}, 1), snapshot({10: 80}, 1)),  # held again: the knee stays 4
    ]
    assert [s.holds for s in steps] == [True, True, False, True]
    assert steps[2].violations == {"livekit_ready: LK-5: timed out": 1} and steps[2].limited_by == "server"
    generator = step_result(2, 30.0, snapshot({}), snapshot({10: 5}, 1, {"stt_final: ERROR: loop stalled": 1}))
    assert generator.errors == {"stt_final: ERROR: loop stalled": 1} and generator.violations == {}
    assert not generator.holds and generator.limited_by == "load generator"
    assert find_knee(steps) == 4
    document = write_knee(steps, tmp_path / "knee.json", "test")
    assert json.loads((tmp_path / "knee.json").read_text())["knee_sessions"] == 4 == document["knee_sessions"]
    assert (tmp_path / "knee.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
