"""An explorer finding of a requirement a fixed case already FAILs is told once, in that case."""

from __future__ import annotations

from pytest_estuary.report import CaseResult, merge_explorer_findings

EXPLORE_LK5 = "conformance/explore/test_explore.py::test_explore[LK-5]"
FIXED_LK5 = "conformance/test_livekit_handshake.py::test_lk_5_ready_for_the_same_room_within_5s"


def _case(nodeid: str, case_id: str, verdict: str, reason: str | None = None, **extra: object) -> CaseResult:
    return CaseResult(case_id, "MUST", "", nodeid, verdict, reason=reason, **extra)  # type: ignore[arg-type]


def test_a_finding_merges_into_the_fixed_fail_of_its_requirement() -> None:
    steps = [{"n": 1, "action": "livekit_join(p1, None)", "t": 0.0, "sent": [], "received": []}]
    cases = {
        FIXED_LK5: _case(FIXED_LK5, "LK-5", "FAIL", "no livekit_ready within 5 s"),
        EXPLORE_LK5: _case(EXPLORE_LK5, "LK-5", "FAIL", "p1: Expected: livekit_ready", steps=steps, replay="R"),
    }
    merge_explorer_findings(cases)
    assert list(cases) == [FIXED_LK5]
    kept = cases[FIXED_LK5]
    assert kept.verdict == "FAIL"
    assert kept.reason is not None and kept.reason.startswith("no livekit_ready within 5 s\n\n")
    assert "The explorer broke LK-5 too (test_explore[LK-5]):\np1: Expected: livekit_ready" in kept.reason
    assert kept.steps == steps and kept.replay == "R"


def test_a_finding_stays_when_no_fixed_case_fails_its_requirement() -> None:
    cases = {
        FIXED_LK5: _case(FIXED_LK5, "LK-5", "BLOCKED", "BLOCKED by LK-1"),
        EXPLORE_LK5: _case(EXPLORE_LK5, "LK-5", "FAIL", "found"),
    }
    merge_explorer_findings(cases)
    assert set(cases) == {FIXED_LK5, EXPLORE_LK5}
    assert cases[FIXED_LK5].reason == "BLOCKED by LK-1"


def test_a_flaky_or_passing_explore_case_is_left_alone() -> None:
    cases = {
        FIXED_LK5: _case(FIXED_LK5, "LK-5", "FAIL", "no ready"),
        EXPLORE_LK5: _case(EXPLORE_LK5, "LK-5", "SKIPPED", "flaky: …"),
    }
    merge_explorer_findings(cases)
    assert set(cases) == {FIXED_LK5, EXPLORE_LK5}
