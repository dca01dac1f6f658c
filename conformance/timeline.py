"""Each case's protocol timeline: the events its peers and clients sent and received, for the report.

Raw Socket.IO and LiveKit peers add themselves with :func:`register` when they are built; a
client under test is added by the conformance conftest. At the case's end :func:`finish` turns
what they recorded into report entries (``TIMELINE_PROPERTY``): times relative to the case's
start, payloads abbreviated as the wire dumps are, tokens and keys cut to a prefix.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ENTRIES", "CaseTimeline", "begin", "finish", "register"]

MAX_ENTRIES = 400  # per case: a flood case (WIRE) must not make the report megabytes long
_ROOM_EVENTS = (
    "connection_state_changed",
    "connected",
    "disconnected",
    "participant_connected",
    "participant_disconnected",
    "track_subscribed",
    "local_track_published",
    "participant_attributes_changed",
    "active_speakers_changed",
)

_CONNECTION_STATES: dict[object, str] = {0: "disconnected", 1: "connected", 2: "reconnecting"}  # rtc.ConnectionState


@dataclass
class CaseTimeline:
    """What one case's sources recorded; ``start`` is the case's time zero (``time.monotonic()``)."""

    start: float = field(default_factory=time.monotonic)
    sources: list[Any] = field(default_factory=list)
    room_events: list[tuple[float, str, str, Any]] = field(default_factory=list)  # (t, peer, event, payload)
    listeners: list[tuple[Any, str, Any]] = field(default_factory=list)  # (room, event, handler)

    def add(self, source: Any) -> None:
        if any(known is source for known in self.sources):
            return
        self.sources.append(source)
        room = getattr(source, "room", None)
        if room is not None and hasattr(room, "on") and hasattr(room, "remote_participants"):
            self._watch_room(room, f"livekit{sum(hasattr(s, 'room') for s in self.sources)}")

    def _watch_room(self, room: Any, name: str) -> None:
        for event in _ROOM_EVENTS:
            handler = room.on(event, lambda *args, event=event: self._room_event(name, event, args))
            self.listeners.append((room, event, handler))

    def release(self) -> None:
        """Let go of the case's rooms: a listener would keep a room (and its native handles) alive in
        a reference cycle until interpreter exit, where livekit's native side aborts the process."""
        for room, event, handler in self.listeners:
            room.off(event, handler)
        self.listeners.clear()
        self.sources.clear()

    def _room_event(self, peer: str, event: str, args: tuple[Any, ...]) -> None:
        if event == "active_speakers_changed":  # only who speaks: frequent, and the bot's first audio
            payload: Any = {"speakers": [getattr(p, "identity", "?") for p in (args[0] if args else [])]}
        elif event == "connection_state_changed":
            payload = {"state": _CONNECTION_STATES.get(args[0] if args else None, str(args[:1]))}
        else:
            payload = _room_payload(args)
        self.room_events.append((time.monotonic(), peer, event, payload))


_current: CaseTimeline | None = None


def begin() -> CaseTimeline:
    """Time zero of a case: sources registered from now on belong to it."""
    global _current
    _current = CaseTimeline()
    return _current


def register(source: Any) -> None:
    """A peer or client adds itself (at construction); outside a case nothing is kept."""
    if _current is not None:
        _current.add(source)


def finish(server_log: list[Any] | None = None) -> list[dict[str, Any]]:
    """The case's entries, oldest first; ``server_log`` (the embedded fake's events) is used only
    when no raw peer recorded the wire itself (client cases), so nothing appears twice."""
    global _current
    timeline, _current = _current, None
    if timeline is None:
        return []
    entries: list[tuple[float, str, str, str, Any]] = []
    wire_peers = 0
    clients = 0
    for source in timeline.sources:
        if hasattr(source, "sio"):  # a raw Socket.IO peer: the wire itself, both directions
            wire_peers += 1
            name = str(getattr(source, "name", f"peer{wire_peers}"))
            for wire in source.events:
                direction = "received" if wire.direction == "in" else "sent"
                payload = wire.args[0] if len(wire.args) == 1 else list(wire.args) or "<no argument>"
                entries.append((wire.t, direction, name, wire.name, payload))
        elif hasattr(source, "player_id") and isinstance(getattr(source, "events", None), list):
            clients += 1  # a client under test: the app events it reported
            for event in source.events:
                entries.append((event.t, "received", f"client{clients}", event.name, event.payload))
    for t, peer, event, payload in timeline.room_events:
        entries.append((t, "received", peer, event, payload))
    timeline.release()
    if server_log and not wire_peers:
        sessions: dict[str, int] = {}
        for recorded in server_log:
            if recorded.t < timeline.start:
                continue
            number = sessions.setdefault(str(recorded.sid), len(sessions) + 1)  # one socket, one line
            direction = "sent" if recorded.direction == "in" else "received"  # as the client saw it
            entries.append((recorded.t, direction, f"socket{number} (fake's log)", recorded.name, recorded.payload))
    entries.sort(key=lambda entry: entry[0])
    kept = [_entry(t - timeline.start, *rest) for t, *rest in entries[:MAX_ENTRIES]]
    if len(entries) > MAX_ENTRIES:
        last = entries[-1][0] - timeline.start
        kept.append(_entry(last, "note", "timeline", f"{len(entries) - MAX_ENTRIES} more events not kept", None))
    return kept


def _entry(t: float, direction: str, peer: str, event: str, payload: Any) -> dict[str, Any]:
    from conformance.peer import _hide_tokens, _redact  # peer.py registers with us: import late

    text = _hide_tokens(json.dumps(_redact(payload), default=str))
    return {"t": round(max(t, 0.0), 4), "dir": direction, "peer": peer, "event": event, "payload": json.loads(text)}


def _room_payload(args: tuple[Any, ...]) -> dict[str, Any]:
    """A LiveKit room event's arguments as a small dict: who, and what changed (never the objects)."""
    payload: dict[str, Any] = {}
    for arg in args:
        identity = getattr(arg, "identity", None)
        if isinstance(identity, str):
            payload["identity"] = identity
        elif isinstance(arg, dict):
            payload["changed"] = {str(k): str(v) for k, v in arg.items()}
        elif isinstance(arg, (str, int, float)):
            payload.setdefault("value", arg)
        elif getattr(arg, "kind", None) is not None and hasattr(arg, "sid"):
            payload["track"] = str(getattr(arg, "name", "") or arg.sid)
    return payload
