"""The gate of a load run, from its final stats: violations by requirement ID and percentile bounds.

``--max p99:livekit_ready=5s`` bounds one percentile of one phase. The gate fails on any failure
(a requirement violated, or ``ERROR``: the harness or network broke), on a bound exceeded or with
no sample to check it against, and on a run that completed no session.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_estuary.load.phases import PHASES

__all__ = ["PERCENTILES", "Bound", "GateResult", "PhaseStats", "evaluate", "parse_bound", "read_final"]

# the percentiles Locust reports, as fractions
PERCENTILES = {"p50": 0.5, "p66": 0.66, "p75": 0.75, "p80": 0.8, "p90": 0.9, "p95": 0.95, "p98": 0.98, "p99": 0.99,
               "p99.9": 0.999, "p99.99": 0.9999, "p100": 1.0}  # fmt: skip
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
    """One phase's final numbers (times in seconds)."""

    name: str
    requests: int
    failures: int
    percentiles: dict[str, float]  # "p50" → seconds


def read_final(path: Path) -> tuple[dict[str, PhaseStats], list[tuple[str, str, int]]]:
    """The run's final stats (``final_stats.json``, written by the Locust file once every user has
    stopped): each phase's counts and percentiles, and ``(phase, message, occurrences)`` per failure.

    Not Locust's CSV files: Locust rewrites those once a second and not at exit, so the requests of
    the last second can be missing from them.
    """
    document = json.loads(path.read_text())
    stats = {
        name: PhaseStats(
            name, int(row["requests"]), int(row["failures"]), {k: float(v) for k, v in row["percentiles"].items()}
        )
        for name, row in document["phases"].items()
    }
    failures = [(str(name), str(message), int(count)) for name, message, count in document["failures"]]
    return stats, failures


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
