"""The gate of a load run, from Locust's CSV files: violations by requirement ID and percentile bounds.

``--max p99:livekit_ready=5s`` bounds one percentile of one phase. The gate fails on any failure
(a requirement violated, or ``ERROR``: the harness or network broke), on a bound exceeded or with
no sample to check it against, and on a run that completed no session.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_estuary.load.phases import PHASES

__all__ = ["PERCENTILES", "Bound", "GateResult", "PhaseStats", "evaluate", "parse_bound", "read_failures", "read_stats"]

# what Locust's stats CSV has a column for
PERCENTILES = {"p50": "50%", "p66": "66%", "p75": "75%", "p80": "80%", "p90": "90%", "p95": "95%", "p98": "98%",
               "p99": "99%", "p99.9": "99.9%", "p99.99": "99.99%", "p100": "100%"}  # fmt: skip
_BOUND = re.compile(r"^(?P<pct>p[0-9.]+):(?P<phase>[a-z_]+)=(?P<value>[0-9]*\.?[0-9]+)(?P<unit>ms|s)$")


@dataclass(frozen=True)
class Bound:
    """``percentile`` (e.g. "p99") of ``phase`` must be at most ``seconds``."""

    percentile: str
    phase: str
    seconds: float

    def __str__(self) -> str:
        return f"{self.percentile}:{self.phase}={self.seconds:g}s"


def parse_bound(text: str) -> Bound:
    """``"p99:livekit_ready=5s"`` → Bound; ValueError says which part is wrong and what is expected."""
    found = _BOUND.match(text.strip())
    if not found:
        raise ValueError(f"--max {text!r}: expected PERCENTILE:PHASE=NUMBER(s|ms), e.g. p99:livekit_ready=5s")
    pct, name = found["pct"], found["phase"]
    if pct not in PERCENTILES:
        raise ValueError(
            f"--max {text!r}: percentile {pct!r} is not one Locust reports; use one of {', '.join(PERCENTILES)}"
        )
    if name not in PHASES:
        raise ValueError(f"--max {text!r}: unknown phase {name!r}; phases: {', '.join(PHASES)}")
    seconds = float(found["value"]) / (1000.0 if found["unit"] == "ms" else 1.0)
    if seconds <= 0:
        raise ValueError(f"--max {text!r}: the bound must be above 0")
    return Bound(pct, name, seconds)


@dataclass
class PhaseStats:
    """One phase's row of Locust's stats CSV (times in seconds)."""

    name: str
    requests: int
    failures: int
    percentiles: dict[str, float]  # "p50" → seconds


def read_stats(path: Path) -> dict[str, PhaseStats]:
    """The ``estuary`` rows of ``PREFIX_stats.csv``, by phase."""
    stats: dict[str, PhaseStats] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Type") != "estuary":
                continue
            values = {key: float(row[column]) / 1000.0 for key, column in PERCENTILES.items()
                      if row.get(column) not in (None, "", "N/A")}  # fmt: skip
            stats[row["Name"]] = PhaseStats(row["Name"], int(row["Request Count"]), int(row["Failure Count"]), values)
    return stats


def read_failures(path: Path) -> list[tuple[str, str, int]]:
    """``(phase, message, occurrences)`` from ``PREFIX_failures.csv``."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [(row["Name"], row["Error"], int(row["Occurrences"])) for row in csv.DictReader(handle)]


def requirement_of(message: str) -> str:
    """The requirement ID a failure message starts with ("LK-5: …" → "LK-5")."""
    head = message.split(":", 1)[0].strip()
    return head if re.fullmatch(r"[A-Z]+(-[0-9]+)?", head) else "ERROR"


@dataclass
class GateResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=dict)  # requirement ID → occurrences
    examples: dict[str, str] = field(default_factory=dict)  # requirement ID → one message
    exceeded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": self.reasons, "violations": self.violations, "examples": self.examples,
                "exceeded": self.exceeded}  # fmt: skip


def evaluate(stats: dict[str, PhaseStats], failures: list[tuple[str, str, int]], bounds: list[Bound]) -> GateResult:
    """The gate over one run's stats and failures."""
    result = GateResult(ok=True)
    for phase_name, message, count in failures:
        owner = requirement_of(message)
        result.violations[owner] = result.violations.get(owner, 0) + count
        result.examples.setdefault(owner, f"{phase_name}: {message}")
    for owner, count in sorted(result.violations.items()):
        what = "harness or network errors" if owner == "ERROR" else "violations"
        result.reasons.append(f"{owner}: {count} {what}, e.g. {result.examples[owner][:200]}")
    for bound in bounds:
        row = stats.get(bound.phase)
        value = row.percentiles.get(bound.percentile) if row is not None and row.requests else None
        if value is None:
            result.exceeded.append(f"{bound}: no {bound.phase} sample to check")
        elif value > bound.seconds:
            result.exceeded.append(f"{bound}: measured {value:g} s over {row.requests if row else 0} requests")
    result.reasons += result.exceeded
    disconnects = stats.get("disconnect")
    if disconnects is None or disconnects.requests == 0:
        result.reasons.append("no session completed (no disconnect phase reported)")
    result.ok = not result.reasons
    return result
