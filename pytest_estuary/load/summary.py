"""The Markdown summary of a load run: the gate, each phase's p50/p95/p99, failures by requirement ID."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_estuary.load.gate import GateResult, PhaseStats
from pytest_estuary.load.phases import ERROR_ID, PHASES

__all__ = ["markdown", "write_summary"]


def _ms(stats: PhaseStats, key: str) -> str:
    value = stats.percentiles.get(key)
    return "-" if value is None else f"{value * 1000:.0f}"


def markdown(stats: dict[str, PhaseStats], gate: GateResult, heading: str, preflight: str | None = None) -> str:
    """The summary: the gate's verdict and reasons first, then the tables."""
    verdict = "PASSED" if gate.ok else "FAILED"
    lines = [f"## {heading}", "", f"**Gate: {verdict}**", ""]
    if preflight:
        lines += [f"Preflight: {preflight}", ""]
    lines += [f"- {reason}" for reason in gate.reasons]
    if gate.reasons:
        lines.append("")
    lines += ["| phase | requirement (bound) | requests | failures | p50 ms | p95 ms | p99 ms |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    order = [name for name in PHASES if name in stats] + sorted(set(stats) - set(PHASES))
    for name in order:
        row = stats[name]
        known = PHASES.get(name)
        owner = (
            "-"
            if known is None
            else f"{known.requirement if known.requirement != ERROR_ID else '-'} ({known.bound:g} s)"
        )
        lines.append(f"| {name} | {owner} | {row.requests} | {row.failures} | {_ms(row, 'p50')} | {_ms(row, 'p95')} "
                     f"| {_ms(row, 'p99')} |")  # fmt: skip
    lines += ["", "### Failures by requirement ID", ""]
    if gate.violations:
        lines += ["| requirement | occurrences | example |", "|---|---|---|"]
        for owner, count in sorted(gate.violations.items()):
            example = gate.examples[owner].replace("|", "\\|")[:240]
            lines.append(f"| {owner} | {count} | {example} |")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_summary(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` and append it to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    path.write_text(text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as handle:
            handle.write(text + "\n")
