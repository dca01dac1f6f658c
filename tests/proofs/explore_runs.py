"""Explorer runs as users start them (``estuary-conformance --estuary-explore``), several side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from live_runs import SuiteRun, run_suite

__all__ = ["EXPLORE_ONLY", "explore_cases", "finding", "run_many"]

EXPLORE_ONLY = ("-k", "test_explore")  # the EXPLORE cases alone: the fixed suite has its own proofs
PARALLEL = 3  # explorer runs at once on 2 cores (each: suite process, fake, bot worker, LiveKit)


def run_many(
    places: dict[str, Path], args: Callable[[str], Sequence[str]], parallel: int = PARALLEL, **kwargs: Any
) -> dict[str, SuiteRun]:
    """``estuary-conformance ARGS(name)`` for every name, ``parallel`` at a time."""

    def one(name: str) -> SuiteRun:
        return run_suite(places[name], *args(name), **kwargs)

    with ThreadPoolExecutor(parallel) as pool:
        return dict(zip(places, pool.map(one, places), strict=True))


def explore_cases(run: SuiteRun) -> list[dict[str, Any]]:
    return [c for c in run.cases() if "::test_explore[" in c["nodeid"]]


def finding(run: SuiteRun) -> dict[str, Any] | None:
    """The run's one FAIL among the EXPLORE cases (``-x`` stops at the first), or None."""
    failed = [c for c in explore_cases(run) if c["verdict"] == "FAIL"]
    assert len(failed) <= 1, [c["nodeid"] for c in failed]
    return failed[0] if failed else None
