"""The LiveKit voice handshake of protocol.md section 4, done step by step by raw peers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.checks import Stopwatch, expect
from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer

__all__ = ["LiveKitHandshake", "livekit_handshake", "request_token"]


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


async def request_token(peer: RawPeer, payload: Any = None, *, timeout: float = 10.0) -> tuple[dict[str, Any], float]:
    """Steps 1-2: ``livekit_token`` → its reply (payload and round-trip seconds)."""
    watch = Stopwatch()
    since = watch.start
    await peer.emit("livekit_token", payload)
    event = await peer.wait(("livekit_token", "livekit_error"), timeout=timeout, since=since)
    expect(
        event.name == "livekit_token",
        expected="a livekit_token reply {token, url, room}",
        actual=event.describe(),
    )
    reply = event.payload
    expect(isinstance(reply, dict), expected="livekit_token payload to be an object", actual=reply)
    return reply, watch.lap()


async def livekit_handshake(
    peer: RawPeer, rtc_peer: RtcPeer, *, timeout: float, join_payload: str = "room"
) -> LiveKitHandshake:
    """Steps 1-6 on an authenticated ``peer``: token, join the room, publish, livekit_join, ready."""
    reply, round_trip = await request_token(peer, timeout=timeout)
    for field in ("token", "url", "room"):
        expect(reply.get(field), expected=f"livekit_token reply with a non-empty {field!r}", actual=reply)
    await rtc_peer.join(reply["url"], reply["token"], timeout=timeout)
    await rtc_peer.publish_microphone()
    watch = Stopwatch()
    body = {"room": reply["room"]} if join_payload == "room" else None
    await peer.emit("livekit_join", body)
    event = await peer.wait(("livekit_ready", "livekit_error"), timeout=timeout, since=watch.start)
    expect(event.name == "livekit_ready", expected="livekit_ready {room}", actual=event.describe())
    return LiveKitHandshake(reply, event.payload, round_trip, watch.lap())
