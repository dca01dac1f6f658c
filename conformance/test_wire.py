"""Server conformance, section 2 (WIRE): argument conventions and robustness."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conformance.checks import Stopwatch, expect
from conformance.factories import PeerFactory, RtcPeerFactory
from conformance.handshake import livekit_handshake
from conformance.peer import NO_ARGUMENT, RawPeer
from pytest_estuary.targets import EstuaryTarget

pytestmark = pytest.mark.asyncio

NO_PAYLOAD_FORMS = {"no_argument": NO_ARGUMENT, "null": None, "object": {}}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
CAMEL_EXTRAS = {"session_info": {"livekitToken", "livekitUrl", "livekitRoom"}, "text": {"textOnly"}}


async def _busy_session(p: RawPeer, rtc_peer: RtcPeerFactory, timeout: float) -> None:
    """A session that makes the server send most of its events: text, LiveKit handshake, leave."""
    await p.session()
    watch = Stopwatch()
    await p.emit("text", {"text": "hello"})
    await p.wait(
        "bot_response",
        predicate=lambda e: isinstance(e.payload, dict) and e.payload.get("is_final") is True,
        since=watch.start,
    )
    await livekit_handshake(p, rtc_peer(), timeout=timeout)
    await p.emit("livekit_leave", None)


@pytest.mark.estuary_case("WIRE-1", "MUST")
async def test_wire_1_every_server_event_has_one_object_argument(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """Every server→client event carries exactly one argument, a JSON object."""
    p = peer()
    await _busy_session(p, rtc_peer, estuary_target.timeout)
    received = [e for e in p.events if e.direction == "in" and not e.name.startswith("<")]
    bad = [e.describe() for e in received if len(e.args) != 1 or not isinstance(e.args[0], dict)]
    expect(received, expected="events from the server", actual="none")
    expect(not bad, expected="exactly one object argument on every event", actual=bad)


@pytest.mark.estuary_case("WIRE-2", "MUST")
@pytest.mark.parametrize("form", sorted(NO_PAYLOAD_FORMS))
@pytest.mark.parametrize(("event", "reply"), [("livekit_token", "livekit_token"), ("start_voice", "voice_started")])
async def test_wire_2_client_events_accept_every_payload_form(
    peer: PeerFactory, event: str, reply: str, form: str
) -> None:
    """Client→server events are accepted with no argument, with null, or with an object."""
    p = peer()
    await p.session()
    watch = Stopwatch()
    await p.emit(event, NO_PAYLOAD_FORMS[form])
    got = await p.wait((reply, "error"), since=watch.start)
    expect(got.name == reply, expected=f"{reply} after {event} sent with {form}", actual=got.describe())
    if event == "start_voice":
        await p.emit("stop_voice", NO_PAYLOAD_FORMS[form])
        await p.wait("voice_stopped", since=watch.start)


MALFORMED: dict[str, tuple[str, Any, str]] = {
    "text_not_a_string": ("text", {"text": 42}, "text"),
    "text_not_an_object": ("text", ["a", "list"], "text"),
    "stream_audio_bad_base64": ("stream_audio", {"audio": "***not base64***"}, "audio"),
    "stream_audio_odd_bytes": ("stream_audio", {"audio": "AAAA"}, "audio"),  # 3 bytes: not PCM16
}


@pytest.mark.estuary_case("WIRE-3", "MUST")
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_wire_3_malformed_payload_gets_error_naming_event_and_field(peer: PeerFactory, case: str) -> None:
    """A malformed payload to a known event gets `error {message}` naming the event and the field; the connection stays."""
    event, payload, field = MALFORMED[case]
    p = peer()
    await p.session()
    if event == "stream_audio":
        await p.emit("start_voice", None)
        await p.wait("voice_started")
    watch = Stopwatch()
    await p.emit(event, payload)
    got = await p.wait("error", since=watch.start)
    message = str(got.payload.get("message", "")) if isinstance(got.payload, dict) else ""
    expect(event in message and field in message, expected=f"error naming {event!r} and {field!r}", actual=got.payload)
    await _still_serves(p)


@pytest.mark.estuary_case("WIRE-3", "MUST")
async def test_wire_3_unknown_event_never_closes_the_connection(peer: PeerFactory) -> None:
    """An unknown event never closes the connection nor crashes the server."""
    p = peer()
    await p.session()
    for args in (NO_ARGUMENT, None, {"x": 1}, "text", 7):
        await p.emit("no_such_event_in_the_protocol", args)
    await _still_serves(p)
    q = peer("second")
    await q.session()  # the server as a whole still serves
    await _still_serves(q)


async def _still_serves(p: RawPeer) -> None:
    watch = Stopwatch()
    await p.emit("text", {"text": "still serving?"})
    await p.wait("bot_response", since=watch.start)
    expect(p.sio.connected, expected="the connection still open", actual="closed")


@pytest.mark.estuary_case("WIRE-4", "INFO")
async def test_wire_4_payload_keys_are_snake_case(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """Payload keys are snake_case, except session_info's camelCase extras and `textOnly`."""
    p = peer()
    await _busy_session(p, rtc_peer, estuary_target.timeout)
    odd = sorted(
        {
            f"{e.name}.{key}"
            for e in p.events
            if e.direction == "in" and isinstance(e.payload, dict)
            for key in e.payload
            if not SNAKE.match(key) and key not in CAMEL_EXTRAS.get(e.name, set())
        }
    )
    expect(not odd, expected="snake_case keys only", actual=odd)
