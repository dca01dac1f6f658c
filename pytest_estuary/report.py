"""The conformance report: verdicts per case, built from test reports on the controlling process.

Case metadata travels in ``report.user_properties`` (which pytest-xdist carries from workers),
so the same code builds the report with or without xdist.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

__all__ = [
    "CASE_PROPERTY",
    "REPORT_SCHEMA_VERSION",
    "TIMING_PROPERTY",
    "CaseResult",
    "ConformanceReport",
    "Verdict",
]

REPORT_SCHEMA_VERSION = 1
CASE_PROPERTY = "estuary_case"
TIMING_PROPERTY = "estuary_timing"

Verdict = Literal["PASS", "FAIL", "NON-STRICT", "SKIPPED", "ERROR"]
_VERDICT_ORDER: tuple[Verdict, ...] = ("FAIL", "ERROR", "NON-STRICT", "SKIPPED", "PASS")


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
    timings: dict[str, float] = field(default_factory=dict)


def _short_reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext or ""
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    chosen = lines[:6] if lines else text.splitlines()[-3:]
    return "\n".join(line.removeprefix("E ").strip() for line in chosen)[:1500]


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
        verdict = self._verdict(report, case.level)
        if verdict is not None and _VERDICT_ORDER.index(verdict) < _VERDICT_ORDER.index(case.verdict):
            case.verdict = verdict
            case.reason = _short_reason(report)

    def _verdict(self, report: pytest.TestReport, level: str) -> Verdict | None:
        if report.when != "call":
            if report.failed:
                return "ERROR"  # a broken environment (fixture, server) is not a protocol failure
            if report.skipped:
                return "SKIPPED"
            return None
        if hasattr(report, "wasxfail") and str(report.wasxfail).startswith("NON-STRICT"):
            return "NON-STRICT"
        if report.failed:
            return "FAIL"
        if report.skipped:
            return "SKIPPED"
        return "PASS"

    # -- results ------------------------------------------------------------------------------

    @property
    def gate_failed(self) -> bool:
        return any(case.verdict in ("FAIL", "ERROR") for case in self.cases.values())

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(reversed(_VERDICT_ORDER), 0)
        for case in self.cases.values():
            counts[case.verdict] += 1
        return counts

    def sorted_cases(self) -> list[CaseResult]:
        return sorted(self.cases.values(), key=lambda c: (_case_sort_key(c.id), c.nodeid))

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
            },
            "summary": {"counts": self.counts(), "gate": "fail" if self.gate_failed else "pass"},
            "cases": [asdict(case) for case in self.sorted_cases()],
        }

    def to_markdown(self) -> str:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.counts().items() if n)
        lines = [
            "## Estuary conformance",
            "",
            f"Mode **{self.mode}**, target `{self.target}`, LiveKit: {self.livekit_source}. "
            f"Gate: **{'FAIL' if self.gate_failed else 'PASS'}** ({counts or 'no cases'}).",
            "",
            "| Case | Level | Verdict | Time (s) | Test | Note |",
            "|---|---|---|---:|---|---|",
        ]
        for case in self.sorted_cases():
            note = (case.reason or "").splitlines()[0][:120] if case.reason else ""
            note = note.replace("|", "\\|")
            test = case.nodeid.rsplit("::", 1)[-1]
            lines.append(f"| {case.id} | {case.level} | {case.verdict} | {case.duration:.2f} | `{test}` | {note} |")
        return "\n".join(lines) + "\n"

    def terminal_lines(self) -> list[str]:
        by_id: dict[str, list[CaseResult]] = {}
        for case in self.sorted_cases():
            by_id.setdefault(case.id, []).append(case)
        lines = []
        for case_id, cases in by_id.items():
            worst = min((c.verdict for c in cases), key=_VERDICT_ORDER.index)
            lines.append(f"{case_id:<10} {cases[0].level:<6} {worst:<10} ({len(cases)} test{'s' * (len(cases) > 1)})")
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.counts().items() if n)
        lines.append(f"gate: {'FAIL' if self.gate_failed else 'PASS'} ({counts})")
        return lines

    def write(self, plugin_version: str, json_path: Path | None, md_path: Path | None) -> None:
        self.finished_at = time.time()
        if json_path is not None:
            self._write_text(json_path, json.dumps(self.to_json(plugin_version), indent=2) + "\n")
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
        return text

    def _write_text(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._scrub(text), encoding="utf-8")


def _case_sort_key(case_id: str) -> tuple[str, int]:
    prefix, _, number = case_id.partition("-")
    return (prefix, int(number) if number.isdigit() else 0)
