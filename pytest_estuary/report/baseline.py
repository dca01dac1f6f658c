"""A previous run's JSON report as the baseline: what changed per case (verdict, duration) and per timing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Baseline", "BaselineError", "CaseChange", "TimingChange", "load_baseline"]


class BaselineError(ValueError):
    """The baseline file cannot be used; the message names the file and what was expected."""


@dataclass(frozen=True)
class CaseChange:
    verdict_before: str | None  # None: the case was not in the baseline
    duration_before: float | None


@dataclass(frozen=True)
class TimingChange:
    before: float
    now: float

    @property
    def ratio(self) -> float | None:
        return None if self.before <= 0 else self.now / self.before - 1.0


@dataclass(frozen=True)
class Baseline:
    """The cases of a previous report, keyed by test (node id), and when it ran."""

    path: str
    started_at: float | None
    cases: dict[str, dict[str, Any]]

    def case(self, nodeid: str) -> CaseChange:
        before = self.cases.get(nodeid)
        if before is None:
            return CaseChange(None, None)
        return CaseChange(str(before.get("verdict")), float(before.get("duration") or 0.0))

    def timing(self, nodeid: str, name: str, now: float) -> TimingChange | None:
        timings = (self.cases.get(nodeid) or {}).get("timings") or {}
        before = timings.get(name)
        return TimingChange(float(before), now) if isinstance(before, (int, float)) else None

    def verdict_changes(self, current: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """``(nodeid, verdict before, verdict now)`` for each ``(nodeid, verdict)`` that changed."""
        changed = []
        for nodeid, verdict in current:
            before = self.case(nodeid).verdict_before
            if before is not None and before != verdict:
                changed.append((nodeid, before, verdict))
        return changed


def load_baseline(path: Path) -> Baseline:
    """Read a JSON report written by ``--estuary-report`` (schema 2 or later)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not isinstance(data.get("run"), dict):
        raise BaselineError(f"{path}: not a conformance report (expected the JSON of --estuary-report: run, cases)")
    if not isinstance(data.get("schema_version"), int) or data["schema_version"] < 2:
        raise BaselineError(f"{path}: report schema {data.get('schema_version')!r}; a baseline needs 2 or later")
    cases = {str(c["nodeid"]): c for c in data["cases"] if isinstance(c, dict) and "nodeid" in c}
    started = data["run"].get("started_at")
    return Baseline(str(path), float(started) if isinstance(started, (int, float)) else None, cases)
