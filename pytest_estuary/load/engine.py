"""The session engine: one asyncio process that runs the sessions a Locust process asks for.

Why a process of its own rather than an asyncio loop in a thread of the Locust process: importing
``locust`` monkey-patches the whole process for gevent (``threading``, ``socket``, ``select``,
``ssl``, ``time.sleep``). Our client is asyncio, and ``livekit.rtc`` calls back into Python from its
native threads through ``threading`` locks and ``loop.call_soon_threadsafe``; under the patches those
are gevent objects that a foreign OS thread must not touch, and asyncio's selector becomes gevent's.
Here nothing is patched: the client and livekit.rtc run exactly as in the conformance suite, on the
other core, and the timings are taken on this loop, not after a gevent scheduling delay.

Protocol (JSON lines). The engine writes ``{"ready": true}`` once, then for each request
``{"id": N, "kind": "text" | "livekit" | "websocket"}`` on stdin it runs one session and writes
``{"id": N, "phase": NAME, "seconds": S, "failure": null | "LK-5: …"}`` per phase, then
``{"id": N, "done": true}``. EOF on stdin: the sessions running finish (bounded), then it exits.
Settings come from the environment (``ESTUARY_URL``, ``ESTUARY_API_KEY``, ``ESTUARY_CHARACTER_ID``,
``ESTUARY_PLAYER_ID``, ``ESTUARY_TIMEOUT``, ``ESTUARY_CA_FILE``, ``ESTUARY_SOCKETIO_PATH``,
``ESTUARY_LOAD_RECORDINGS``), so the key is never on a command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pytest_estuary.load.loop_lag import MONITOR
from pytest_estuary.load.recordings import load_recordings
from pytest_estuary.load.scenarios import KINDS, SessionSettings, run_session

__all__ = ["DRAIN_TIMEOUT", "main", "settings_from_environment"]

DRAIN_TIMEOUT = 60.0  # after EOF: a session's longest path (all its bounds) fits well within this


def settings_from_environment(env: dict[str, str] | None = None) -> SessionSettings:
    """The sessions' settings from ``env`` (default ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    recordings = env.get("ESTUARY_LOAD_RECORDINGS")
    return SessionSettings(
        url=env["ESTUARY_URL"],
        api_key=env["ESTUARY_API_KEY"],
        character_id=env.get("ESTUARY_CHARACTER_ID") or "pytest-character",
        player_prefix=env.get("ESTUARY_PLAYER_ID") or "load",
        timeout=float(env.get("ESTUARY_TIMEOUT") or 10.0),
        ca_file=env.get("ESTUARY_CA_FILE") or None,
        socketio_path=env.get("ESTUARY_SOCKETIO_PATH") or "/socket.io/",
        recordings=tuple(load_recordings(Path(recordings) if recordings else None)),
    )


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve(settings: SessionSettings) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()

    async def one(request_id: int, kind: Any) -> None:
        def report(name: str, seconds: float, failure: str | None) -> None:
            _write({"id": request_id, "phase": name, "seconds": round(seconds, 6), "failure": failure})

        try:
            if kind not in KINDS:
                report("request", 0.0, f"ERROR: unknown session kind {kind!r}; expected one of {list(KINDS)}")
            else:
                await run_session(kind, settings, report)
        finally:
            _write({"id": request_id, "done": True})

    MONITOR.start()
    _write({"ready": True})
    while line := await reader.readline():
        request = json.loads(line)
        task = asyncio.ensure_future(one(int(request["id"]), request.get("kind")))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running, timeout=DRAIN_TIMEOUT)
    await MONITOR.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="engine %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(settings_from_environment()))


if __name__ == "__main__":
    main()
