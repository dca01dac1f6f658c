"""The invariants checked after every step: one small function per requirement, named for it.

Each reads what the world recorded and returns None, or what it saw broken (Expected/Actual).
They come from protocol.md alone: the explorer knows no server's defects.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.explore.actions import hung_up
from conformance.explore.world import ExplorerPeer, World

__all__ = ["INVARIANTS", "Invariant"]

Invariant = Callable[[World], str | None]
SOLICITING = ("text", "say_line")  # events a bot_response stream may answer (and speech, below)


def _all_peers(world: World) -> list[ExplorerPeer]:
    return [*world.closed_peers, *world.peers.values()]


def _broken(world: World, requirement: str) -> str | None:
    for expectation in world.expectations:
        if expectation.requirement == requirement and expectation.broken:
            return f"{expectation.peer}: Expected: {expectation.what}\nActual:   {expectation.broken}"
    return None


def wire_1_one_object_argument(world: World) -> str | None:
    """WIRE-1: every server event carries exactly one argument, a JSON object."""
    for peer in _all_peers(world):
        for event in peer.events:
            if event.direction == "in" and not event.well_formed:
                expected = f"{event.name} with exactly one object argument"
                return f"{peer.name}: Expected: {expected}\nActual:   {event.describe()}"
    return None


def wire_2_documented_forms_accepted(world: World) -> str | None:
    """WIRE-2: a documented form is never refused (`error`) nor answered by a hang-up."""
    for peer in _all_peers(world):
        cause = peer.hang_up_cause() if hung_up(peer) and not _timed_out(peer) else None
        if cause is not None and cause[1]:
            return (
                f"{peer.name}: Expected: the connection to stay after {cause[0]} (a documented form)\n"
                f"Actual:   the server closed the connection after {cause[0]}"
            )
    step = world.steps[-1] if world.steps else None
    if step is None:
        return None
    for entry in step.received:
        if entry.event == "error" and entry.peer not in world.malformed_sent:
            return (
                f"{entry.peer}: Expected: no error in a step that sent documented forms only ({step.action})\n"
                f"Actual:   <- error {entry.payload}"
            )
    return None


def _timed_out(peer: ExplorerPeer) -> bool:
    return bool(peer.seen("session_timeout"))  # CONN-7: the server may close after it


def wire_3_malformed_gets_error_and_connection_stays(world: World) -> str | None:
    """WIRE-3: a malformed payload gets `error` naming the event; it or an unknown event never closes the connection."""
    for peer in _all_peers(world):
        cause = peer.hang_up_cause() if hung_up(peer) and not _timed_out(peer) else None
        if cause is not None and not cause[1]:
            return (
                f"{peer.name}: Expected: the connection to stay after {cause[0]} (malformed or unknown)\n"
                f"Actual:   the server closed the connection after {cause[0]}"
            )
    return _broken(world, "WIRE-3")


def ws_1_voice_started_answered(world: World) -> str | None:
    """WS-1: each start_voice gets voice_started or voice_error within 10 s; none comes unasked."""
    return _broken(world, "WS-1") or _unasked(world, ("voice_started", "voice_error"), "start_voice")


def ws_3_voice_stopped_answered(world: World) -> str | None:
    """WS-3: each stop_voice gets voice_stopped within the client's bound; none comes unasked."""
    return _broken(world, "WS-3") or _unasked(world, ("voice_stopped",), "stop_voice")


def lk_5_ready_for_the_token_room(world: World) -> str | None:
    """LK-5: each livekit_join gets livekit_ready for the token's room (or livekit_error) in 5 s; no ready unasked."""
    return _broken(world, "LK-5") or _unasked(world, ("livekit_ready",), "livekit_join")


def lk_9_rooms_gone_after_leave(world: World) -> str | None:
    """LK-9: after livekit_leave every room of the session is deleted within 5 s."""
    return _broken(world, "LK-9")


def text_1_reply_streams(world: World) -> str | None:
    """TEXT-1: text is answered in time; each stream counts 0,1,2…, has one final chunk, the last;
    a socket that sent no text (nor said anything) gets none."""
    problem = _broken(world, "TEXT-1")
    if problem:
        return problem
    for peer in _all_peers(world):
        streams: dict[str, list[dict[str, object]]] = {}
        for event in peer.received("bot_response"):
            payload = event.payload if isinstance(event.payload, dict) else {}
            chunks = streams.setdefault(str(payload.get("message_id")), [])
            index = payload.get("chunk_index")
            if chunks and chunks[-1].get("is_final") is True:
                return f"{peer.name}: Expected: nothing after a stream's final chunk\nActual:   {event.describe()}"
            if index != len(chunks) or not isinstance(payload.get("is_final"), bool):
                return (
                    f"{peer.name}: Expected: bot_response chunk_index {len(chunks)} of stream "
                    f"{payload.get('message_id')!r} with a boolean is_final\nActual:   {event.describe()}"
                )
            chunks.append(payload)
        asked = sum(peer.sent.get(name, 0) for name in SOLICITING)
        if streams and not asked and not peer.spoke:
            first = peer.received("bot_response")[0]
            return (
                f"{peer.name}: Expected: no bot_response on a socket that sent no text and said nothing\n"
                f"Actual:   {first.describe()}"
            )
        if len(streams) > asked and not peer.spoke:
            return (
                f"{peer.name}: Expected: at most {asked} reply stream(s), one per text or say_line sent\n"
                f"Actual:   {len(streams)} streams ({', '.join(streams)})"
            )
    return None


def _unasked(world: World, answers: tuple[str, ...], request: str) -> str | None:
    for peer in _all_peers(world):
        got = peer.received(answers)
        if len(got) > peer.sent.get(request, 0):
            return (
                f"{peer.name}: Expected: {' / '.join(answers)} only in answer to {request} "
                f"(sent {peer.sent.get(request, 0)} time(s))\nActual:   {got[-1].describe()}"
            )
    return None


# Checked in this order after every step: the first broken one is the step's finding.
INVARIANTS: dict[str, Invariant] = {
    "WIRE-1": wire_1_one_object_argument,
    "WIRE-3": wire_3_malformed_gets_error_and_connection_stays,
    "WIRE-2": wire_2_documented_forms_accepted,
    "WS-1": ws_1_voice_started_answered,
    "WS-3": ws_3_voice_stopped_answered,
    "LK-5": lk_5_ready_for_the_token_room,
    "LK-9": lk_9_rooms_gone_after_leave,
    "TEXT-1": text_1_reply_streams,
}
