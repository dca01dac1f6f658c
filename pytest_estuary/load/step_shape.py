"""A step load shape for the knee: ``estuary-load --steps 2,4,8 --step-time 30s`` adds this file.

Each step holds its number of sessions for the step time; at each boundary the shape snapshots
Locust's cumulative stats (on the master in a distributed run: the merged stats of every worker,
which lag by up to one worker report, ~3 s). After the last step it writes the knee JSON + PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

from locust import LoadTestShape

from pytest_estuary.load.knee import Snapshot, StepResult, step_result, write_knee

__all__ = ["EstuaryStepShape"]


class EstuaryStepShape(LoadTestShape):
    """Steps from ``ESTUARY_LOAD_STEPS`` ("2,4,8"), each ``ESTUARY_LOAD_STEP_SECONDS`` long."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.steps = [int(s) for s in os.environ.get("ESTUARY_LOAD_STEPS", "1").split(",")]
        self.step_seconds = float(os.environ.get("ESTUARY_LOAD_STEP_SECONDS", "30"))
        self.output = Path(os.environ.get("ESTUARY_LOAD_KNEE", "knee.json"))
        self.current = -1
        self.started: Snapshot | None = None
        self.results: list[StepResult] = []

    def _snapshot(self) -> Snapshot:
        assert self.runner is not None
        stats = self.runner.stats
        phases = {name: (dict(entry.response_times), entry.num_failures)
                  for (name, method), entry in stats.entries.items() if method == "estuary"}  # fmt: skip
        errors = {f"{e.name}: {e.error}": e.occurrences for e in stats.errors.values()}
        return {"phases": phases, "errors": errors}

    def _close_step(self) -> None:
        snapshot = self._snapshot()
        if self.started is not None and self.current >= 0:
            timeout = float(os.environ.get("ESTUARY_TIMEOUT") or 10)
            result = step_result(self.steps[self.current], self.step_seconds, self.started, snapshot, timeout)
            self.results.append(result)
        self.started = snapshot

    def tick(self) -> tuple[int, float] | None:
        index = int(self.get_run_time() // self.step_seconds)  # type: ignore[no-untyped-call]
        if index != self.current:
            self._close_step()
            self.current = index
        if index >= len(self.steps):
            if self.results and not self.output.exists():
                write_knee(self.results, self.output, f"Estuary load steps ({os.environ.get('ESTUARY_LOAD_MIX', '')})")
            return None
        sessions = self.steps[index]
        return sessions, float(sessions)

    def __repr__(self) -> str:
        return f"EstuaryStepShape(steps={self.steps}, step_seconds={self.step_seconds})"
