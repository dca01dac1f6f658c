"""The conformance report: verdicts per case, built from test reports on the controlling process.

Case metadata travels in ``report.user_properties`` (which pytest-xdist carries from workers),
so the same code builds the report with or without xdist. The verdict model is
:mod:`pytest_estuary.verdicts`; the plugin classifies each call (``VERDICT_PROPERTY``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_estuary.report.baseline import Baseline, BaselineError, load_baseline
from pytest_estuary.verdicts import EXECUTED, VERDICT_ORDER, Verdict

__all__ = [
    "CASE_PROPERTY",
    "REPLAY_PROPERTY",
    "REPORT_SCHEMA_VERSION",
    "STEPS_PROPERTY",
    "TIMELINE_PROPERTY",
    "TIMING_PROPERTY",
    "VERDICT_PROPERTY",
    "Baseline",
    "BaselineError",
    "CaseResult",
    "ConformanceReport",
    "Verdict",
    "case_sort_key",
    "load_baseline",
    "merge_explorer_findings",
    "scrub_tokens",
    "table_cell",
]

# 2: BLOCKED (with blocked_by), ERROR for harness exceptions, the preflight, the empty-run gate.
# 3: per case `timeline` (the protocol events a case sent and received), `steps` and `replay`
#    (an explorer finding's shrunk sequence and the one line that replays it).
REPORT_SCHEMA_VERSION = 3
CASE_PROPERTY = "estuary_case"
TIMING_PROPERTY = "estuary_timing"
VERDICT_PROPERTY = "estuary_verdict"
# A list of {"t": seconds since the case started, "dir": "sent" | "received" | "note", "peer": str,
# "event": str, "payload": abbreviated JSON}; secrets are cut before it is recorded.
TIMELINE_PROPERTY = "estuary_timeline"
# A list of {"n": 1.., "action": str, "t": float, "sent": [timeline entries], "received": [...]}.
STEPS_PROPERTY = "estuary_steps"
REPLAY_PROPERTY = "estuary_replay"  # str: the option line that replays a finding exactly
TOP_FAILURES = 5


@dataclass
class CaseResult:
    """One test's verdict against one requirement."""

    id: str
    level: str
    requirement: str
    nodeid: str
    verdict: Verdict = "PASS"
    duration: float = 0.0
    reason: str | None = None
    blocked_by: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    replay: str | None = None

    @property
    def summary(self) -> str:
        """The reason's first line, with its Actual line when it states an Expected: what a reader
        scanning the table needs."""
        lines = [line.strip() for line in (self.reason or "").splitlines() if line.strip()]
        if not lines:
            return ""
        actual = next((line for line in lines[1:3] if line.startswith("Actual:")), None)
        return f"{lines[0]} — {' '.join(actual.split())}" if actual and "Expected:" in lines[0] else lines[0]


def _reason(report: pytest.TestReport) -> str:
    """The failure text a stranger needs: the assertion's lines (Expected/Actual), not the traceback."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext or ""
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    chosen = lines[:40] if lines else text.splitlines()[-6:]
    reason = "\n".join(line.removeprefix("E ").rstrip() for line in chosen)
    return reason.replace("\n  ", "\n").strip()[:4000]


class ConformanceReport:
    """Collects case results from ``pytest_runtest_logreport`` and writes JSON and Markdown."""

    def __init__(self, *, mode: str, target: str | None, livekit_source: str, strict: bool) -> None:
        self.mode = mode
        self.target = target
        self.livekit_source = livekit_source
        self.strict = strict
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.cases: dict[str, CaseResult] = {}
        self.secrets: list[str] = []
        self.preflight: dict[str, Any] | None = None
        self.client: dict[str, Any] | None = None  # the --estuary-client the client cases drove
        self.baseline: Baseline | None = None  # a previous run's report to compare with

    # -- collection ---------------------------------------------------------------------------

    def add(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        meta = props.get(CASE_PROPERTY)
        if not isinstance(meta, dict):
            return
        case = self.cases.get(report.nodeid)
        if case is None:
            case = CaseResult(
                id=str(meta["id"]),
                level=str(meta["level"]),
                requirement=str(meta.get("requirement", "")),
                nodeid=report.nodeid,
            )
            self.cases[report.nodeid] = case
        case.duration += report.duration
        for key, value in report.user_properties:
            if key == TIMING_PROPERTY and isinstance(value, (tuple, list)) and len(value) == 2:
                case.timings[str(value[0])] = round(float(value[1]), 4)
            elif key == TIMELINE_PROPERTY and isinstance(value, list):
                case.timeline.extend(entry for entry in value if isinstance(entry, dict))
            elif key == STEPS_PROPERTY and isinstance(value, list):
                case.steps = [step for step in value if isinstance(step, dict)]
            elif key == REPLAY_PROPERTY and isinstance(value, str):
                case.replay = value
        verdict, reason, blocked_by = self._verdict(report, props.get(VERDICT_PROPERTY))
        if verdict is not None and VERDICT_ORDER.index(verdict) < VERDICT_ORDER.index(case.verdict):
            case.verdict, case.reason, case.blocked_by = verdict, reason, blocked_by

    @staticmethod
    def _verdict(report: pytest.TestReport, classified: Any) -> tuple[Verdict | None, str | None, str | None]:
        if isinstance(classified, dict) and report.when == "call":
            return classified["verdict"], classified.get("reason") or _reason(report), classified.get("blocked_by")
        if report.when != "call":
            if report.failed:  # a fixture or the server broke, or a case left state behind
                return "ERROR", f"{report.when} failed: {_reason(report)}", None
            if report.skipped:
                return "SKIPPED", _reason(report), None
            return None, None, None
        if report.failed:
            return "FAIL", _reason(report), None
        if report.skipped:
            return "SKIPPED", _reason(report), None
        return "PASS", None, None

    def record_preflight(self, result: dict[str, Any]) -> None:
        """Keep the live preflight's findings; a failed one is the run's single ERROR."""
        self.preflight = result
        if not result.get("ok"):
            self.cases["<preflight>"] = CaseResult(
                id="PREFLIGHT",
                level="MUST",
                requirement="The target can be tested: reachable, Socket.IO /sdk, the API key accepted.",
                nodeid="<preflight>",
                verdict="ERROR",
                duration=float(result.get("seconds", 0.0)),
                reason=str(result.get("diagnosis")),
            )

    # -- results ------------------------------------------------------------------------------

    @property
    def executed(self) -> int:
        return sum(case.verdict in EXECUTED for case in self.cases.values())

    @property
    def gate_failed(self) -> bool:
        """Any MUST FAIL, any ERROR, any NON-STRICT under --estuary-strict, or no case executed."""
        fatal = {"FAIL", "ERROR"} | ({"NON-STRICT"} if self.strict else set())
        return self.executed == 0 or any(case.verdict in fatal for case in self.cases.values())

    def gate_text(self) -> str:
        if self.executed == 0:
            return "FAIL (no conformance case was executed)"
        return "FAIL" if self.gate_failed else "PASS"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(reversed(VERDICT_ORDER), 0)
        for case in self.cases.values():
            counts[case.verdict] += 1
        return counts

    def sorted_cases(self) -> list[CaseResult]:
        return sorted(self.cases.values(), key=lambda c: (case_sort_key(c.id), c.nodeid))

    def top_problems(self) -> list[CaseResult]:
        """The cases a reader must look at first: errors, then MUST failures, then the rest."""
        order = ("ERROR", "FAIL", "NON-STRICT") if self.strict else ("ERROR", "FAIL")
        return [c for verdict in order for c in self.sorted_cases() if c.verdict == verdict]

    def to_json(self, plugin_version: str) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "run": {
                "plugin_version": plugin_version,
                "mode": self.mode,
                "target": self.target,
                "livekit_source": self.livekit_source,
                "strict": self.strict,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "python": platform.python_version(),
                "pytest": pytest.__version__,
                "preflight": self.preflight,
                "client": self.client,
            },
            "summary": {
                "counts": self.counts(),
                "executed": self.executed,
                "gate": "fail" if self.gate_failed else "pass",
            },
            "cases": [asdict(case) for case in self.sorted_cases()],
        }

    def to_markdown(self) -> str:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.counts().items() if n)
        lines = [
            "## Estuary conformance",
            "",
            f"**Gate: {self.gate_text()}** — {counts or 'no cases'}. "
            f"Mode **{self.mode}**, target `{self.target}`, LiveKit: {self.livekit_source}."
            + (
                f" Client cases drove **{self.client['name']} {self.client['version']}** "
                f"(`--estuary-client {self.client['option']}`)."
                if self.client
                else ""
            ),
            "",
        ]
        problems = self.top_problems()
        if problems:
            lines.append("Look at these first:")
            lines.append("")
            for case in problems[:TOP_FAILURES]:
                lines.append(f"- **{case.verdict} {case.id}** `{_test_name(case)}`: {table_cell(case.summary, 300)}")
            if len(problems) > TOP_FAILURES:
                lines.append(f"- … and {len(problems) - TOP_FAILURES} more below")
            lines.append("")
        if self.baseline is not None:
            changed = self.baseline.verdict_changes((c.nodeid, c.verdict) for c in self.sorted_cases())
            moved = ", ".join(f"{self.cases[n].id} {before} → {now}" for n, before, now in changed)
            lines += [f"Since the baseline (`{self.baseline.path}`): {moved or 'no verdict changed'}.", ""]
        if self.preflight and self.preflight.get("ok"):
            lines += [f"Preflight: {table_cell(str(self.preflight.get('summary', 'ok')), 400)}", ""]
        lines += [
            "Verdicts: PASS · FAIL (a MUST broken) · BLOCKED (a step of another requirement failed first; "
            "not counted against the case) · NON-STRICT (a SHOULD/INFO broken) · SKIPPED · "
            "ERROR (the environment or the harness broke).",
            "",
            "| Case | Level | Verdict | Time (s) | Test | Requirement | Note |",
            "|---|---|---|---:|---|---|---|",
        ]
        for case in self.sorted_cases():
            lines.append(
                f"| {case.id} | {case.level} | {case.verdict} | {case.duration:.2f} | `{_test_name(case)}` "
                f"| {table_cell(case.requirement, 200)} | {table_cell(case.summary, 160)} |"
            )
        details = [c for c in self.sorted_cases() if c.reason and c.verdict != "PASS" and c.verdict != "SKIPPED"]
        if details:
            lines += ["", "### Details", ""]
            for case in details:
                timings = ", ".join(f"{k} {v:.3f} s" for k, v in case.timings.items())
                lines += [
                    f"<details><summary>{case.verdict} {case.id} <code>{_test_name(case)}</code></summary>",
                    "",
                    f"Requirement: {case.requirement}" + (f"  \nTimings: {timings}" if timings else ""),
                    "",
                    "```text",
                    (case.reason or "").replace("```", "'''"),
                    "```",
                    "",
                    *_markdown_steps(case),
                    "</details>",
                    "",
                ]
        return "\n".join(lines).rstrip() + "\n"

    def terminal_lines(self) -> list[str]:
        by_id: dict[str, list[CaseResult]] = {}
        for case in self.sorted_cases():
            by_id.setdefault(case.id, []).append(case)
        lines = []
        for case_id, cases in by_id.items():
            worst = min(cases, key=lambda c: VERDICT_ORDER.index(c.verdict))
            extra = f"  {worst.summary[:100]}" if worst.verdict in ("BLOCKED", "ERROR") else ""
            count = f"({len(cases)} test{'s' * (len(cases) > 1)})"
            lines.append(f"{case_id:<10} {cases[0].level:<6} {worst.verdict:<10} {count}{extra}")
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.counts().items() if n)
        lines.append(f"gate: {self.gate_text()} ({counts or 'no cases'})")
        return lines

    def write(
        self, plugin_version: str, json_path: Path | None, md_path: Path | None, html_path: Path | None = None
    ) -> None:
        self.finished_at = time.time()
        if json_path is not None:
            self._write_text(json_path, json.dumps(self.to_json(plugin_version), indent=2) + "\n")
        if html_path is not None:
            from pytest_estuary.report.html import report_html

            self._write_text(html_path, report_html(self.to_json(plugin_version), self.baseline))
        markdown = self.to_markdown()
        if md_path is not None:
            self._write_text(md_path, markdown)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(self._scrub(markdown))

    def _scrub(self, text: str) -> str:
        """Last line of defence: no registered secret reaches a file, whatever a reason quoted."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, secret[:4] + "…")
        return scrub_tokens(text)

    def _write_text(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._scrub(text), encoding="utf-8")


_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")


def scrub_tokens(text: str) -> str:
    """Every JWT in ``text`` cut to a prefix (a report's last line of defence)."""
    return _JWT.sub(lambda m: m.group(0)[:8] + "…", text)


def _markdown_steps(case: CaseResult) -> list[str]:
    """An explorer finding's shrunk steps, numbered, and the line that replays it."""
    if not case.steps:
        return []
    lines = ["Steps:", ""]
    for number, step in enumerate(case.steps, start=1):
        traffic = [f"→ {e.get('event')}" for e in step.get("sent", [])] + [
            f"← {e.get('event')}" for e in step.get("received", [])
        ]
        t = step.get("t")
        when = f" (at {float(t):.3f} s)" if isinstance(t, (int, float)) else ""
        lines.append(
            f"{step.get('n', number)}. {table_cell(str(step.get('action', '?')), 200)}{when}"
            + (f": {', '.join(traffic)}" if traffic else "")
        )
    lines.append("")
    if case.replay:
        lines += [f"Replay: `{case.replay}`", ""]
    return lines


def table_cell(text: str, limit: int) -> str:
    """Text fit for one Markdown table cell."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _test_name(case: CaseResult) -> str:
    return case.nodeid.rsplit("::", 1)[-1]


def case_sort_key(case_id: str) -> tuple[str, int]:
    prefix, _, number = case_id.partition("-")
    return (prefix, int(number) if number.isdigit() else 0)


EXPLORE_TEST = "::test_explore["  # the explorer's cases (conformance/explore), one per requirement


def merge_explorer_findings(cases: dict[str, CaseResult]) -> None:
    """An explorer FAIL whose requirement a fixed case FAILs in the same run is told once: in that
    case's verdict, whose reason gains the explorer's sequence (and steps and replay, if it has none)."""
    fixed = {c.id: c for nodeid, c in sorted(cases.items()) if c.verdict == "FAIL" and EXPLORE_TEST not in nodeid}
    for nodeid, case in list(cases.items()):
        if EXPLORE_TEST in nodeid and case.verdict == "FAIL" and case.id in fixed:
            kept = fixed[case.id]
            kept.reason = (
                f"{kept.reason or ''}\n\nThe explorer broke {case.id} too ({_test_name(case)}):\n{case.reason or ''}"
            )
            kept.steps, kept.replay = kept.steps or case.steps, kept.replay or case.replay
            del cases[nodeid]
