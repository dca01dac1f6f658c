"""Locust's master + two workers on this machine: every worker runs sessions (its own player-id
prefix shows in the fake's event log) and the master's stats merge both, through one gate."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from load_runs import estuary_load, start_estuary_load
from standalone_fakes import StandaloneFakes

from pytest_estuary.livekit_server import free_port


def _players(server: dict[str, str]) -> str:
    request = urllib.request.Request(server["url"] + "/control/events?name=session_info&direction=out",
                                     headers={"Authorization": f"Bearer {server['control_token']}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.dumps(json.load(reply))


def test_master_merges_two_workers(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake()
    port = str(free_port(host="127.0.0.1"))
    workers = [
        start_estuary_load(
            server["url"],
            server["api_key"],
            tmp_path / f"{name}.log",
            "--worker",
            "--master-port",
            port,
            "--estuary-player-id",
            name,
            "--out",
            str(tmp_path / name),
        )
        for name in ("wone", "wtwo")
    ]
    try:
        run = estuary_load(server["url"], server["api_key"], tmp_path / "master", "--master", "--expect-workers", "2",
                           "--master-bind-port", port, "-u", "2", "-r", "2", "-t", "12s",
                           "--transport-mix", "text=1,livekit=1")  # fmt: skip
        assert run.status == 0, f"{run.status}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        for name, worker in zip(("wone", "wtwo"), workers, strict=True):
            assert worker.wait(60) == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    stats = run.stats()
    connects = stats["connect"].requests
    players = _players(server)
    from_one, from_two = players.count('"wone-'), players.count('"wtwo-')
    assert from_one >= 1 and from_two >= 1, f"session_info by worker: {from_one}, {from_two}"
    assert connects >= 2 and stats["livekit_ready"].requests >= 1
    assert run.gate()["ok"] is True
