"""The users against the real standalone fake + livekit-server: every phase of every kind is reported,
a healthy server passes the gate, and the files a user reads are written."""

from __future__ import annotations

from pathlib import Path

from load_runs import estuary_load
from standalone_fakes import StandaloneFakes

from pytest_estuary.load import PHASES

TEXT = {"connect", "text_reply", "disconnect"}
LIVEKIT = {"livekit_token", "room_connect", "publish", "livekit_ready", "bot_track", "stt_final",
           "bot_response_final", "bot_audio", "stop"}  # fmt: skip
WEBSOCKET = {"voice_started", "stt_final", "bot_response_final", "bot_audio", "stop"}


def test_every_phase_of_every_user_is_a_locust_request(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake()
    run = estuary_load(
        server["url"], server["api_key"], tmp_path,
        "--users", "3", "--spawn-rate", "3", "--run-time", "14s",
        "--transport-mix", "text=1,livekit=1,websocket=1", "--max", "p99:livekit_ready=5s",
    )  # fmt: skip
    assert run.status in (0, 1), f"estuary-load exited {run.status}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    stats = run.stats()
    missing = (TEXT | LIVEKIT | WEBSOCKET) - set(stats)
    assert not missing, f"phases never reported: {sorted(missing)}; got {sorted(stats)}"
    assert set(stats) <= set(PHASES)
    for name in TEXT | LIVEKIT | WEBSOCKET:  # each phase completed at least once
        assert stats[name].requests > stats[name].failures, stats[name]
    assert stats["livekit_ready"].percentiles["p99"] <= 5.0
    # A healthy server breaks nothing. Only a speech phase may fail, and only as ERROR: the generator's
    # own loop stalled while it spoke (a loaded machine); that is never counted against the server.
    failures = run.failures()
    assert all(name == "stt_final" and message.startswith("ERROR: ") for name, message, _ in failures), failures
    assert run.gate()["ok"] is (not failures) and run.status == (1 if failures else 0)
    assert run.gate()["preflight"]["ok"] is True
    summary = (tmp_path / "summary.md").read_text()
    assert "| livekit_ready | LK-5 (5 s) |" in summary and ("**Gate: PASSED**" in summary) is (not failures)
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert server["api_key"] not in summary + run.stdout + run.stderr + (tmp_path / "report.html").read_text()
