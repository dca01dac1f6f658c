"""Helpers for client cases: which server step a failed voice start ran into, seen from the fake's
own event log (so the blame does not depend on how a client words its errors), and voice start as
a step."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pytest_estuary.clients import ClientFailure, ClientUnderTest
from pytest_estuary.verdicts import Blocked

__all__ = ["HANDSHAKE", "broken_step", "failure_of", "started"]

HANDSHAKE = ("LK-1", "LK-2", "LK-5")  # the LiveKit start's server steps in order: token, room, ready


def _session_events(server: Any, player_id: str) -> list[Any]:
    sessions = {s.session_id for s in server.sessions if s.player_id == player_id}
    return [e for e in server.events.find() if e.session_id in sessions] if sessions else server.events.find()


def broken_step(server: Any, player_id: str, transport: str | None) -> str | None:
    """The first server step of the player's latest voice start that the fake did not complete —
    LK-1 token, LK-2 room (the client never got far enough to send ``livekit_join``), LK-5 ready
    (none, or for another room), WS-1 ``voice_started`` — or None when the server did its part or
    was never asked (the client failed on its own before its first request)."""
    events = _session_events(server, player_id)
    request = "start_voice" if transport == "websocket" else "livekit_token"
    asked = [i for i, e in enumerate(events) if e.direction == "in" and e.name == request]
    if not asked:
        return None
    latest = events[asked[-1] :]
    sent = [e for e in latest if e.direction == "out"]
    if transport == "websocket":
        return None if any(e.name == "voice_started" for e in sent) else "WS-1"
    tokens = [e.payload for e in sent if e.name == "livekit_token"]
    if not tokens:
        return "LK-1"
    if not any(e.direction == "in" and e.name == "livekit_join" for e in latest):
        return "LK-2"
    room = tokens[-1].get("room") if isinstance(tokens[-1], dict) else None
    readies = [e.payload for e in sent if e.name == "livekit_ready" and isinstance(e.payload, dict)]
    if not any(ready.get("room") == room for ready in readies):
        return "LK-5"
    return None


async def started(server: Any, client: ClientUnderTest, transport: str | None = None) -> str:
    """``client.start_voice()`` as a precondition. A failure BLOCKS the case by the server step the
    fake did not complete (a client case observes the client, not a broken server); a failure
    against a server that did its part is the client's own and stays a failure. Returns the transport."""
    wanted = transport or client.settings.voice_transport
    try:
        return await client.start_voice()
    except ClientFailure as exc:
        step = broken_step(server, client.player_id, "websocket" if wanted == "websocket" else "livekit")
        if step is None:
            raise
        raise Blocked(step, "voice start", str(exc)) from exc


async def failure_of(action: Awaitable[Any], expected: str, doing: str) -> ClientFailure:
    """The :class:`ClientFailure` that ``action`` must end in; an AssertionError saying what the
    client did instead when it succeeds."""
    try:
        result = await action
    except ClientFailure as failure:
        return failure
    raise AssertionError(f"Expected: {expected} from {doing}\nActual:   it succeeded (returned {result!r})")
