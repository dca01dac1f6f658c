"""A case's timeline read as the handshake's phases: token, room connect, ready, first bot audio…

The entries are the report's ``timeline`` (see ``TIMELINE_PROPERTY``); a phase is the time from
the event that starts it to the first event that ends it. A phase whose end never came is kept
open (``end`` None): that is where a handshake stalled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PHASES", "Phase", "PhaseKind", "phases"]

Entry = dict[str, Any]
Match = Callable[[Entry], bool]
MAX_PER_PHASE = 4  # a case that repeats a handshake (one per payload form) shows its first four


def _is(direction: str, *events: str) -> Match:
    return lambda entry: entry.get("dir") == direction and entry.get("event") in events


def _payload(entry: Entry) -> dict[str, Any]:
    payload = entry.get("payload")
    return payload if isinstance(payload, dict) else {}


def _bot_heard(entry: Entry) -> bool:
    """The bot's first audio as a peer can see it: the SFU names it an active speaker, the fake's
    bot says it is speaking, or the server announces the voiced reply."""
    payload = _payload(entry)
    if entry.get("event") == "active_speakers_changed":
        return any(str(s).startswith("bot-") for s in payload.get("speakers", []))
    if entry.get("event") == "participant_attributes_changed":
        return str(payload.get("identity", "")).startswith("bot-") and "speaking" in payload.get("changed", {}).values()
    return entry.get("dir") == "received" and entry.get("event") == "bot_voice"


def _final_reply(entry: Entry) -> bool:
    return _is("received", "bot_response")(entry) and _payload(entry).get("is_final") is True


def _room_connected(entry: Entry) -> bool:
    if entry.get("event") == "connection_state_changed":
        return _payload(entry).get("state") == "connected"
    # a client under test says so itself; in the fake's log the join follows the room connect
    return _is("received", "livekit_connected")(entry) or _is("sent", "livekit_join")(entry)


@dataclass(frozen=True)
class PhaseKind:
    name: str
    starts: Match
    ends: Match
    awaited: bool = True  # an answer the protocol owes: without it the phase is open (stalled)


PHASES = (
    PhaseKind("session", _is("sent", "connect", "authenticate"), _is("received", "session_info", "auth_error")),
    PhaseKind("token", _is("sent", "livekit_token"), _is("received", "livekit_token", "livekit_error")),
    PhaseKind("room connect", _is("received", "livekit_token"), _room_connected),
    PhaseKind("ready", _is("sent", "livekit_join"), _is("received", "livekit_ready", "livekit_error")),
    PhaseKind(
        "bot track",
        _is("received", "livekit_ready"),
        lambda e: e.get("event") == "track_subscribed" and str(_payload(e).get("identity", "")).startswith("bot-"),
        awaited=False,
    ),
    PhaseKind("first bot audio", _is("received", "livekit_ready"), _bot_heard, awaited=False),
    PhaseKind("voice start", _is("sent", "start_voice"), _is("received", "voice_started", "voice_error")),
    PhaseKind("text reply", _is("sent", "text"), _final_reply, awaited=False),
)


@dataclass(frozen=True)
class Phase:
    """One bar of the waterfall; ``end`` None: the ending event never came."""

    name: str
    start: float
    end: float | None
    ended_by: str | None

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


def phases(entries: list[Entry]) -> list[Phase]:
    """The phases found in ``entries`` (oldest first), in the order they started."""
    found: list[Phase] = []
    # The session phase starts at the case's time zero when the peer connected with auth in CONNECT.
    if entries and not any(PHASES[0].starts(e) for e in entries):
        first_end = next((e for e in entries if PHASES[0].ends(e)), None)
        if first_end is not None:
            found.append(Phase("session", 0.0, float(first_end["t"]), str(first_end["event"])))
    for kind in PHASES:
        index, count = 0, 0
        while count < MAX_PER_PHASE:
            start = next((i for i in range(index, len(entries)) if kind.starts(entries[i])), None)
            if start is None:
                break
            end = next((i for i in range(start + 1, len(entries)) if kind.ends(entries[i])), None)
            t0 = float(entries[start]["t"])
            if end is None:
                if kind.awaited:
                    found.append(Phase(kind.name, t0, None, None))
                break
            found.append(Phase(kind.name, t0, float(entries[end]["t"]), str(entries[end]["event"])))
            index, count = end + 1, count + 1
    return sorted(found, key=lambda phase: phase.start)
