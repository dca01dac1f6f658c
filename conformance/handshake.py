"""The LiveKit voice handshake of protocol.md section 4, done step by step by raw peers.

Each step carries the requirement it belongs to (token LK-1, room join LK-2, ready LK-5, bot
track LK-6): a case that needs the handshake is BLOCKED by the first step that fails, and only
the case owning that requirement can FAIL for it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from conformance.checks import Stopwatch, expect
from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer
from pytest_estuary.verdicts import current_case, step
from pytest_estuary.waiting import WaitTimeout, wait_until

__all__ = [
    "LEAVE_BOUND",
    "READY_BOUND",
    "TOKEN_BOUND",
    "LiveKitHandshake",
    "bot_track",
    "join_room",
    "leave_room",
    "livekit_handshake",
    "request_token",
    "room_ends",
    "wait_ready",
]

TOKEN_BOUND = 10.0  # LK-1: the livekit_token reply comes within 10 s
READY_BOUND = 5.0  # LK-5: livekit_ready within 5 s of livekit_join
LEAVE_BOUND = 5.0  # LK-9: the bot leaves and the room is deleted within 5 s of livekit_leave


@dataclass
class LiveKitHandshake:
    """What each step of a completed handshake returned, with its timings."""

    reply: dict[str, Any]
    ready: dict[str, Any]
    token_round_trip: float
    join_to_ready: float

    @property
    def room(self) -> str:
        return str(self.reply["room"])


async def request_token(
    peer: RawPeer, payload: Any = None, *, timeout: float | None = None
) -> tuple[dict[str, Any], float]:
    """Steps 1-2 (LK-1): ``livekit_token`` → a reply with token, url and room (payload, round trip).

    LK-1's own case waits LK-1's 10 s; as a step of another case it waits the suite's timeout.
    """
    if timeout is None:
        timeout = TOKEN_BOUND if current_case() == "LK-1" else min(TOKEN_BOUND, peer.target.timeout)
    with step("LK-1", "livekit_token reply {token, url, room}"):
        watch = Stopwatch()
        await peer.emit("livekit_token", payload)
        event = await peer.wait(("livekit_token", "livekit_error"), timeout=timeout, since=watch.start)
        expect(
            event.name == "livekit_token",
            expected="a livekit_token reply {token, url, room}",
            actual=event.describe(),
        )
        reply: dict[str, Any] = event.payload
        missing = [key for key in ("token", "url", "room") if not isinstance(reply.get(key), str) or not reply[key]]
        expect(not missing, expected="livekit_token reply with non-empty token, url and room", actual=event.describe())
    return reply, watch.lap()


async def join_room(rtc_peer: RtcPeer, reply: dict[str, Any], *, timeout: float, publish: bool = True) -> None:
    """Steps 3-4 (LK-2): join the room at ``url`` with ``token`` and publish the microphone."""
    with step("LK-2", f"join room {reply.get('room')!r} with the token"):
        try:
            await rtc_peer.join(reply["url"], reply["token"], timeout=timeout)
        except Exception as exc:  # the LiveKit server's reason is the evidence
            raise AssertionError(
                f"Expected: LiveKit at {reply['url']} accepts the token\nActual:   {type(exc).__name__}: {exc}"
            ) from exc
        expect(
            rtc_peer.room.name == reply["room"], expected=f"joined room {reply['room']!r}", actual=rtc_peer.room.name
        )
        if publish:
            await rtc_peer.publish_microphone()


async def wait_ready(peer: RawPeer, room: str, *, join_payload: Any, since: float) -> dict[str, Any]:
    """Steps 5-6 (LK-5): after ``livekit_join`` was sent, ``livekit_ready {room}`` for the same room in 5 s."""
    with step("LK-5", "livekit_ready for the joined room"):
        event = await peer.wait(("livekit_ready", "livekit_error"), timeout=READY_BOUND, since=since)
        if event.name == "livekit_error":
            raise AssertionError(f"the server refused the room: {event.describe()}")
        expect(
            event.payload.get("room") == room,
            expected=f"livekit_ready {{room: {room!r}}} (sent {join_payload!r})",
            actual=event.describe(),
        )
    ready: dict[str, Any] = event.payload
    return ready


async def livekit_handshake(
    peer: RawPeer, rtc_peer: RtcPeer, *, timeout: float, join_payload: str = "room"
) -> LiveKitHandshake:
    """Steps 1-6 on an authenticated ``peer``: token, join the room, publish, livekit_join, ready."""
    reply, round_trip = await request_token(peer, timeout=max(timeout, 1.0))
    await join_room(rtc_peer, reply, timeout=timeout)
    watch = Stopwatch()
    body = {"room": reply["room"]} if join_payload == "room" else None
    await peer.emit("livekit_join", body)
    ready = await wait_ready(peer, reply["room"], join_payload=body, since=watch.start)
    return LiveKitHandshake(reply, ready, round_trip, watch.lap())


async def bot_track(rtc_peer: RtcPeer, *, timeout: float = READY_BOUND) -> Any:
    """LK-6 as a step: the bot participant publishing audio that we subscribed to."""
    with step("LK-6", "a bot-* participant publishing audio"):
        return await rtc_peer.wait_for_bot_track(timeout=timeout)


async def leave_room(peer: RawPeer, rtc_peer: RtcPeer, form: Any, described: str) -> Stopwatch:
    """Send ``livekit_leave`` as ``form`` and look at the server's answer before the room (WIRE-2).

    A server that refuses a documented form (``error``, or the socket closed) has broken WIRE-2,
    not LK-9: that is a step of WIRE-2, so LK-9's case is BLOCKED by it rather than failing. Waits
    at most LK-9's bound for the answer or the room's end; returns the stopwatch started at the send.
    """
    watch = Stopwatch()
    await peer.emit("livekit_leave", form)

    def settled() -> bool:
        answered = bool(peer.seen("error", since=watch.start)) or peer.disconnected.is_set()
        return answered or rtc_peer.disconnected_at is not None

    with contextlib.suppress(WaitTimeout):  # the room not ending is for the caller to judge
        await wait_until(settled, timeout=LEAVE_BOUND, awaited=f"an answer to livekit_leave ({described})")
    with step("WIRE-2", f"livekit_leave sent with {described} is accepted"):
        refusal = peer.seen("error", since=watch.start)
        actual = refusal[0].describe() if refusal else "the server closed the connection"
        expect(
            not refusal and not peer.disconnected.is_set(),
            expected=f"livekit_leave sent with {described} accepted (no error, the connection open)",
            actual=actual,
        )
    return watch


async def room_ends(rtc_peer: RtcPeer, since: Stopwatch, what: str) -> float:
    """Seconds from ``since`` until the room connection ended, within LK-9's bound; the bot gone too."""
    await rtc_peer.wait_disconnected(timeout=max(0.1, LEAVE_BOUND - since.lap()))
    expect(
        not rtc_peer.bots() or rtc_peer.disconnected_at is not None,
        expected=f"the bot gone after {what}",
        actual=rtc_peer.bots(),
    )
    assert rtc_peer.disconnected_at is not None  # wait_disconnected returned
    return rtc_peer.disconnected_at - since.start
