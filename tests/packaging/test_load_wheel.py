"""``estuary-load`` as a user gets it: the wheel's console script, run outside the repository,
against a standalone fake + livekit-server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from standalone_fakes import StandaloneFakes

if TYPE_CHECKING:
    from tests.packaging.conftest import Venv


def test_estuary_load_runs_from_the_wheel(installed: Venv, project: Path, standalone_fake: StandaloneFakes) -> None:
    server = standalone_fake()
    command = ["estuary-load", "--estuary-url", server["url"], "-u", "3", "-r", "3", "-t", "6s",
               "--transport-mix", "text=1", "--out", "load"]  # fmt: skip
    result = installed.run(command, project, timeout=150, env=installed.env(ESTUARY_API_KEY=server["api_key"]))
    assert result.code == 0, result.output[-4000:]
    assert "**Gate: PASSED**" in result.output and "| text_reply | TEXT-1 (10 s) |" in result.output
    assert {"locust_stats.csv", "report.html", "summary.md", "gate.json", "final_stats.json"} <= {
        p.name for p in (project / "load").iterdir()
    }
