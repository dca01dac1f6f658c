"""Issue 18: the explorer runs from the wheel alone, live, against a standalone fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.explore.requirements import EXPLORED

if TYPE_CHECKING:
    from standalone_fakes import StandaloneFakes

    from tests.packaging.conftest import Venv

EXPLORE_SECONDS = 15


def test_estuary_conformance_explores_a_good_server_live(
    installed: Venv, project: Path, standalone_fake: StandaloneFakes
) -> None:
    server: dict[str, Any] = standalone_fake.start()
    report = project / "explore.json"
    command = [
        "estuary-conformance", "-q", "-k", "test_explore", "--estuary-live", "--estuary-url", server["url"],
        "--estuary-explore", "--estuary-explore-time", str(EXPLORE_SECONDS), "--estuary-report", str(report),
    ]  # fmt: skip
    result = installed.run(command, project, timeout=300, env=installed.env(ESTUARY_API_KEY=server["api_key"]))
    assert result.code == 0, result.output[-5000:]
    cases = json.loads(report.read_text())["cases"]
    assert {c["id"]: c["verdict"] for c in cases} == dict.fromkeys(EXPLORED, "PASS"), result.output[-3000:]
    assert all(c["timings"]["explore_seconds"] >= EXPLORE_SECONDS for c in cases)
