"""The knee of a step load: per-step phase percentiles, the largest step that holds, and its plot.

A step's numbers are the difference of two snapshots of Locust's cumulative stats (response-time
histograms and failure counts), taken when the step starts and when it ends, so each step is judged
only by the sessions that ran in it. No Locust import: the step shape takes the snapshots.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_estuary.load.phases import DEFAULT_TIMEOUT, ERROR_ID, PHASES, phase

__all__ = ["Snapshot", "StepResult", "find_knee", "percentile", "plot", "step_result", "write_knee"]

# phase → (histogram {ms: count}, failures); errors: "phase: message" → occurrences
Snapshot = dict[str, Any]


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile (ms) of a Locust-style histogram {rounded ms: count}."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    wanted = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return float(value)
    return float(max(histogram))


@dataclass
class StepResult:
    sessions: int
    seconds: float
    phases: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)  # "phase: message" → occurrences in this step
    errors: dict[str, int] = field(default_factory=dict)  # the same for ERROR: the harness, not the server
    holds: bool = True
    why_not: list[str] = field(default_factory=list)
    limited_by: str | None = None  # "server" or "load generator" (only ERRORs): who broke this step


def step_result(
    sessions: int, seconds: float, before: Snapshot, after: Snapshot, timeout: float = DEFAULT_TIMEOUT
) -> StepResult:
    """What happened between two snapshots, judged against each phase's requirement bound (``timeout``
    for a phase the protocol does not bound)."""
    result = StepResult(sessions, seconds)
    for name, (histogram, failures) in after["phases"].items():
        old_hist, old_failures = before["phases"].get(name, ({}, 0))
        diff = {ms: n - old_hist.get(ms, 0) for ms, n in histogram.items() if n - old_hist.get(ms, 0) > 0}
        requests = sum(diff.values())
        if not requests and failures == old_failures:
            continue
        p50, p99 = percentile(diff, 0.50), percentile(diff, 0.99)
        result.phases[name] = {"requests": requests, "failures": failures - old_failures, "p50_ms": p50, "p99_ms": p99}
        known = PHASES.get(name)
        limit = known.limit(timeout) if known is not None else None
        if known is not None and limit is not None and p99 is not None and p99 > limit * 1000:
            result.why_not.append(f"{name} p99 {p99:.0f} ms > {limit:g} s ({known.requirement})")
    server_broke = bool(result.why_not)
    for key, count in after["errors"].items():
        new = count - before["errors"].get(key, 0)
        if new > 0:
            harness = key.split(": ", 1)[-1].startswith(f"{ERROR_ID}:")
            (result.errors if harness else result.violations)[key] = new
            server_broke = server_broke or not harness
            result.why_not.append(f"{new}x {key[:160]}")
    result.holds = not result.why_not
    if not result.holds:
        result.limited_by = "server" if server_broke else "load generator"
    return result


def find_knee(steps: list[StepResult]) -> int | None:
    """The most sessions at which this step and every smaller one held (None: not even the first)."""
    knee = None
    for step in sorted(steps, key=lambda s: s.sessions):
        if not step.holds:
            break
        knee = step.sessions
    return knee


def plot(steps: list[StepResult], path: Path, title: str) -> None:
    """Sessions vs p50 (dashed) and p99 (solid) per phase, log scale, with the LK-5 bound marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 6))
    names = [n for n in PHASES if any(n in s.phases for s in steps)]
    for index, name in enumerate(names):
        color = plt.get_cmap("tab20")(index % 20)
        rows = [(s.sessions, s.phases[name]) for s in steps if s.phases.get(name, {}).get("p99_ms") is not None]
        xs = [sessions for sessions, _ in rows]
        # a log axis has no 0: a phase that took under 1 ms is drawn at 1 ms
        p99 = [max(1.0, float(row["p99_ms"] or 0)) for _, row in rows]
        p50 = [max(1.0, float(row["p50_ms"] or 0)) for _, row in rows]
        axes.plot(xs, p99, "-o", color=color, label=f"{name} p99")
        axes.plot(xs, p50, "--", color=color, alpha=0.6)
    bound = phase("livekit_ready").bound * 1000
    axes.axhline(bound, color="red", linewidth=0.8, linestyle=":", label="LK-5 bound (5 s)")
    axes.set_xlabel("concurrent sessions (Locust users)")
    axes.set_ylabel("phase duration, ms (log; solid p99, dashed p50)")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.legend(fontsize=7, ncol=2, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_knee(steps: list[StepResult], path: Path, title: str) -> dict[str, Any]:
    """``path`` (JSON) and ``path`` with ``.png`` (the plot); returns the JSON document."""
    document = {"knee_sessions": find_knee(steps), "steps": [asdict(s) for s in steps],
                "bounds": {n: {"requirement": p.requirement, "seconds": p.bound} for n, p in PHASES.items()},
                "plot": str(path.with_suffix(".png"))}  # fmt: skip
    path.write_text(json.dumps(document, indent=2))
    knee = document["knee_sessions"]
    plot(steps, path.with_suffix(".png"), f"{title}: knee {knee if knee is not None else 'below the first step'}")
    return document
