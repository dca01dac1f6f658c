"""The conformance report: verdicts, files, exit status, secrets, xdist and junitxml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

SECRET = "sk-report-secret-0123456789abcdef"

CASES = f'''
import os
import pytest

@pytest.mark.estuary_case("LK-1", "MUST")
def test_lk_1_passes(record_estuary_timing):
    """The token reply comes within 10 s."""
    record_estuary_timing("token_round_trip", 0.012)

@pytest.mark.estuary_case("LK-5", "MUST")
def test_lk_5_fails():
    """livekit_ready comes within 5 s."""
    assert False, "Expected: livekit_ready; Actual: nothing (key {SECRET})"

@pytest.mark.estuary_case("LK-7", "SHOULD")
def test_lk_7_should_fails():
    """Speech yields stt_response."""
    assert False, "no transcript"

@pytest.mark.estuary_case("LK-10", "INFO")
def test_lk_10_skipped():
    """The bot sets estuary.state."""
    pytest.skip("not offered by this server")

@pytest.fixture
def broken_environment():
    raise RuntimeError("livekit-server missing")

@pytest.mark.estuary_case("CONN-1", "MUST")
def test_conn_1_environment_broken(broken_environment):
    """Socket.IO v4 on /sdk."""

@pytest.mark.estuary_case("LK-6", "MUST")
def test_lk_6_blocked_by_ready():
    """A bot is in the room at livekit_ready."""
    from pytest_estuary.verdicts import step
    with step("LK-5", "livekit_ready for the joined room"):
        assert False, "Expected: livekit_ready\\nActual:   nothing within 5 s"

@pytest.mark.estuary_case("LK-9", "MUST")
def test_lk_9_own_step_fails():
    """The room is deleted after leave."""
    from pytest_estuary.verdicts import step
    with step("LK-9", "leave"):
        assert False, "Expected: the room gone\\nActual:   still there"

@pytest.mark.estuary_case("TEXT-2", "SHOULD")
def test_text_2_harness_bug():
    """bot_voice follows."""
    None.get("x")

def test_not_a_case():
    pass
'''


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], str]:
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess(
        "--estuary-report", "out/report.json", "--estuary-report-md", "out/report.md", *args
    )
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    markdown = (pytester.path / "out" / "report.md").read_text()
    return result, report, markdown


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {case["id"]: case["verdict"] for case in report["cases"]}


def test_verdicts_levels_and_exit_status(pytester: pytest.Pytester) -> None:
    result, report, markdown = _run(pytester)
    assert _verdicts(report) == {
        "LK-1": "PASS",
        "LK-5": "FAIL",
        "LK-7": "NON-STRICT",
        "LK-10": "SKIPPED",
        "CONN-1": "ERROR",
        "LK-6": "BLOCKED",
        "LK-9": "FAIL",
        "TEXT-2": "ERROR",
    }
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the MUST failure
    assert report["schema_version"] == 3
    assert report["run"]["mode"] == "fake"
    assert report["summary"]["gate"] == "fail"
    by_id = {case["id"]: case for case in report["cases"]}
    assert by_id["LK-1"]["timings"] == {"token_round_trip": 0.012}
    assert by_id["LK-1"]["requirement"] == "The token reply comes within 10 s."
    assert by_id["LK-10"]["reason"] == "not offered by this server"
    assert "livekit-server missing" in by_id["CONN-1"]["reason"]
    assert "| LK-7 | SHOULD | NON-STRICT |" in markdown
    assert by_id["LK-6"]["blocked_by"] == "LK-5"
    assert by_id["LK-6"]["reason"].startswith("BLOCKED by LK-5 (livekit_ready for the joined room): Expected:")
    assert "harness error, not a protocol observation: AttributeError" in by_id["TEXT-2"]["reason"]
    assert report["summary"]["counts"]["BLOCKED"] == 1
    # A stranger reads the gate and what to look at first in the first lines, the full reason below.
    head = markdown.splitlines()[:12]
    assert head[2].startswith("**Gate: FAIL**")
    assert any(line.startswith("- **ERROR CONN-1**") for line in head)
    assert any(line.startswith("- **FAIL LK-5**") for line in head)
    assert "Actual: nothing (key" in markdown or "Actual:" in markdown.split("### Details")[1]
    assert "| LK-5 | MUST | FAIL |" in markdown and "livekit_ready comes within 5 s." in markdown
    result.stdout.fnmatch_lines(["*estuary conformance*", "LK-5 * MUST * FAIL *", "gate: FAIL*"])


def test_a_run_that_executed_no_case_fails_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess("-k", "nothing_matches_this", "--estuary-report", "r.json")
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["summary"] == {"counts": report["summary"]["counts"], "executed": 0, "gate": "fail"}
    assert result.ret != pytest.ExitCode.OK
    skipped_only = pytester.runpytest_subprocess("-k", "lk_10", "--estuary-report", "s.json")
    assert json.loads((pytester.path / "s.json").read_text())["summary"]["gate"] == "fail"
    assert skipped_only.ret == pytest.ExitCode.TESTS_FAILED
    skipped_only.stdout.fnmatch_lines(["gate: FAIL (no conformance case was executed)*"])


def test_should_failure_alone_keeps_the_gate_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess("-k", "lk_1_ or lk_7 or lk_10", "--estuary-report", "r.json")
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["summary"]["gate"] == "pass"
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)


def test_strict_makes_should_failures_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess("-k", "lk_1_ or lk_7", "--estuary-strict", "--estuary-report", "r.json")
    report = json.loads((pytester.path / "r.json").read_text())
    assert _verdicts(report) == {"LK-1": "PASS", "LK-7": "NON-STRICT"}
    assert report["summary"]["gate"] == "fail"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_no_secret_reaches_the_report_files(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESTUARY_API_KEY", SECRET)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _, report, markdown = _run(pytester, "--estuary-report-html", "out/report.html")
    page = (pytester.path / "out" / "report.html").read_text()
    everything = json.dumps(report) + markdown + summary.read_text() + page
    assert "Estuary conformance" in summary.read_text()
    assert SECRET not in everything
    assert SECRET[:4] + "…" in json.dumps(report, ensure_ascii=False)  # the failure text, scrubbed
    assert SECRET[:4] + "…" in page
    # the page is one self-contained file: nothing is fetched (the SVG namespace is a name, not a request)
    assert '<span class="gate fail" id=gate>Gate: FAIL</span>' in page
    assert all(f'data-id="{case["id"]}"' in page for case in report["cases"])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link rel=stylesheet" not in page


def test_report_is_complete_under_xdist(pytester: pytest.Pytester) -> None:
    result, report, _ = _run(pytester, "-p", "xdist", "-n", "2")
    assert _verdicts(report) == {
        "LK-1": "PASS",
        "LK-5": "FAIL",
        "LK-7": "NON-STRICT",
        "LK-10": "SKIPPED",
        "CONN-1": "ERROR",
        "LK-6": "BLOCKED",
        "LK-9": "FAIL",
        "TEXT-2": "ERROR",
    }
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_junitxml_names_carry_case_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    pytester.runpytest_subprocess("--junitxml", "junit.xml")
    xml = (Path(pytester.path) / "junit.xml").read_text()
    assert 'name="test_lk_5_fails"' in xml
    assert '<property name="estuary_case_id" value="LK-5"' in xml
    for verdict in ("PASS", "FAIL", "BLOCKED", "ERROR"):
        assert f'<property name="estuary_verdict_name" value="{verdict}"' in xml, verdict


def test_pytest_html_gets_case_columns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    pytester.runpytest_subprocess("--html", "out/report.html", "--self-contained-html")
    page = (pytester.path / "out" / "report.html").read_text()
    for key, title in (("caseId", "Case"), ("level", "Level"), ("verdict", "Verdict"), ("timings", "Timings")):
        assert f'data-column-type="{key}">{title}' in page
    # pytest-html keeps each row's cells as escaped JSON in the page
    for cell in ("col-caseId\\&#34;&gt;LK-6&lt;", "col-verdict\\&#34;&gt;BLOCKED&lt;", "token_round_trip 0.012 s"):
        assert cell in page, cell


def test_a_case_summary_keeps_what_was_expected_and_what_came() -> None:
    from pytest_estuary.report import CaseResult

    case = CaseResult("ERR-2", "MUST", "", "t::x", "FAIL", reason="AssertionError: Expected: A\nActual:   B\nmore")
    assert case.summary == "AssertionError: Expected: A — Actual: B"
    assert CaseResult("LK-5", "MUST", "", "t::y", "FAIL", reason="timed out\nActual: x").summary == "timed out"
    assert CaseResult("LK-5", "MUST", "", "t::z").summary == ""


STEPS_CASE = """
import pytest
from pytest_estuary.report import REPLAY_PROPERTY, STEPS_PROPERTY, TIMELINE_PROPERTY

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
STEPS = [
    {"n": 1, "action": "connect", "t": 0.01, "sent": [{"event": "authenticate"}],
     "received": [{"event": "session_info"}]},
    {"n": 2, "action": "livekit_join before a token", "t": 0.2, "sent": [{"event": "livekit_join"}], "received": []},
]
TIMELINE = [
    {"t": 0.0, "dir": "sent", "peer": "peer1", "event": "livekit_token", "payload": None},
    {"t": 0.1, "dir": "received", "peer": "peer1", "event": "livekit_token", "payload": {"token": JWT}},
    {"t": 0.2, "dir": "sent", "peer": "peer1", "event": "livekit_join", "payload": {"room": "r"}},
]

@pytest.mark.estuary_case("LK-5", "MUST")
def test_explore_finding(request):
    \"\"\"livekit_ready comes within 5 s.\"\"\"
    request.node.user_properties.append((STEPS_PROPERTY, STEPS))
    request.node.user_properties.append((REPLAY_PROPERTY, "--estuary-explore-replay 'AbC'"))
    request.node.user_properties.append((TIMELINE_PROPERTY, TIMELINE))
    assert False, "Expected: livekit_ready\\nActual:   nothing"
"""


def test_explorer_steps_and_timeline_in_markdown_and_html(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_steps=STEPS_CASE)
    pytester.runpytest_subprocess("--estuary-report-md", "r.md", "--estuary-report-html", "r.html")
    markdown = (pytester.path / "r.md").read_text()
    details = markdown.split("### Details", 1)[1]
    assert "1. connect (at 0.010 s): → authenticate, ← session_info" in details
    assert "2. livekit_join before a token (at 0.200 s): → livekit_join" in details
    assert "Replay: `--estuary-explore-replay 'AbC'`" in details
    assert details.index("Steps:") < details.index("</details>")
    page = (pytester.path / "r.html").read_text()
    assert "<ol class=steps><li>connect" in page and "--estuary-explore-replay &#x27;AbC&#x27;" in page
    assert "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0" not in page  # the JWT in a payload, cut to a prefix
    assert '["ready",0.2,null,null]' in page  # the join was never answered: the page draws that phase open


def test_baseline_says_what_changed(pytester: pytest.Pytester) -> None:
    base = {
        "schema_version": 3,
        "run": {"started_at": 1_700_000_000.0},
        "cases": [
            {"nodeid": "test_cases.py::test_lk_1_passes", "verdict": "PASS", "timings": {"token_round_trip": 0.006}},
            {"nodeid": "test_cases.py::test_lk_5_fails", "verdict": "PASS", "duration": 0.1},
        ],
    }
    (pytester.path / "base.json").write_text(json.dumps(base))
    _, _, markdown = _run(pytester, "--estuary-report-baseline", "base.json", "--estuary-report-html", "out/r.html")
    assert "Since the baseline (`base.json`): LK-5 PASS → FAIL." in markdown
    page = (pytester.path / "out" / "r.html").read_text()
    assert '<span class="up">+0.006 s (+100%)</span>' in page  # token_round_trip 0.006 → 0.012


def test_a_bad_baseline_is_a_usage_error_naming_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)
    (pytester.path / "notes.json").write_text('{"hello": 1}')
    for path, expected in (("missing.json", "cannot read it"), ("notes.json", "not a conformance report")):
        # in-process: a usage error ends the run at configure time, before anything is imported
        result = pytester.runpytest_inprocess(
            "-o", "asyncio_default_fixture_loop_scope=function", "--estuary-report-baseline", path
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--estuary-report-baseline: {path}: {expected}*"])


def test_phases_find_where_a_handshake_stalled() -> None:
    from pytest_estuary.report.timeline import phases

    def entry(t: float, direction: str, event: str, **payload: Any) -> dict[str, Any]:
        return {"t": t, "dir": direction, "peer": "p", "event": event, "payload": payload}

    timeline = [
        entry(0.01, "received", "session_info"),
        entry(0.02, "sent", "livekit_token"),
        entry(0.05, "received", "livekit_token", room="r"),
        entry(0.15, "received", "connection_state_changed", state="connected"),
        entry(0.16, "sent", "livekit_join", room="r"),
    ]
    found = [(p.name, p.start, p.end) for p in phases(timeline)]
    assert found == [
        ("session", 0.0, 0.01),
        ("token", 0.02, 0.05),
        ("room connect", 0.05, 0.15),
        ("ready", 0.16, None),  # never answered: the stall
    ]
    answered = [*timeline, entry(0.2, "received", "livekit_ready", room="r"), entry(0.5, "received", "bot_voice")]
    assert [(p.name, p.end) for p in phases(answered)][-2:] == [("ready", 0.2), ("first bot audio", 0.5)]
