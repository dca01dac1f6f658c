"""Server conformance, section 2 (WIRE): argument conventions and robustness."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conformance.checks import Stopwatch, expect
from conformance.factories import PeerFactory, RtcPeerFactory
from conformance.handshake import (
    LEAVE_BOUND,
    READY_BOUND,
    join_room,
    leave_room,
    livekit_handshake,
    request_token,
)
from conformance.peer import NO_ARGUMENT, RawPeer, WireEvent
from conformance.text import final_reply, interrupted, still_serves
from conformance.websocket_voice import start_websocket_voice, stop_websocket_voice, stream
from pytest_estuary import audio
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.verdicts import Blocked, ProtocolViolation, step

pytestmark = pytest.mark.asyncio

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
CAMEL_EXTRAS = {"session_info": {"livekitToken", "livekitUrl", "livekitRoom"}, "text": {"textOnly"}}


async def _busy_run(peer: PeerFactory, rtc_peer: RtcPeerFactory, target: EstuaryTarget, server: Any) -> list[RawPeer]:
    """Make the server send every event it can: auth_error, error, session_info, bot_response,
    bot_voice, interrupt, voice_started, stt_response, voice_stopped, livekit_token, livekit_ready,
    and (fake only) voice_timeout and session_timeout. A part whose step fails is left out."""
    refused, early, p = peer("bad-key"), peer("unauthenticated"), peer("busy")

    async def refusals() -> None:
        await refused.open(auth=refused.auth(api_key="not-a-key-of-this-server"))
        await early.open(auth=None, style="none")
        await early.emit("text", {"text": "hello before auth"})
        await refused.wait(("auth_error", "session_info"))
        await early.wait("error")

    await _best_effort(refusals)
    info = await p.session()

    async def chat() -> None:
        await final_reply(p, "hello")
        await p.emit("say_line", {"text": "A line to speak."})
        await p.emit("client_interrupt", {})
        await p.wait(("interrupt", "error"))
        await p.emit("text", {"text": 42})
        await p.wait("error")

    async def websocket_voice() -> None:
        await start_websocket_voice(p)
        await stream(p, audio.utterance(duration=0.6, sample_rate=24000), 24000)
        with contextlib.suppress(AssertionError):  # a transcript is WS-2's business; its shape is ours
            await p.wait("stt_response", timeout=3.0)
        await stop_websocket_voice(p)

    async def livekit_voice() -> None:
        await livekit_handshake(p, rtc_peer(), timeout=target.timeout)
        await p.emit("livekit_leave", None)

    for part in (chat, websocket_voice, livekit_voice):
        await _best_effort(part)
    if server is not None:
        server.trigger_voice_timeout(player_id=info["player_id"])
        await p.wait("voice_timeout")
        server.trigger_session_timeout(player_id=info["player_id"])
        await p.wait("session_timeout")
    return [refused, early, p]


async def _best_effort(part: Callable[[], Awaitable[None]]) -> None:
    """Run one provocation; what it fails to provoke is another requirement's business, but a
    malformed event it receives is WIRE-1's."""
    try:
        await part()
    except ProtocolViolation:
        raise
    except (Blocked, AssertionError):
        pass


@pytest.mark.estuary_case("WIRE-1", "MUST")
async def test_wire_1_every_server_event_has_one_object_argument(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget, request: pytest.FixtureRequest
) -> None:
    """Every server→client event carries exactly one argument, a JSON object (every kind of event the server can be made to send)."""
    # The fake's controls without the estuary_server fixture: that one fails a test on client
    # protocol violations, and this case commits some on purpose (events before auth).
    server = request.getfixturevalue("_estuary_fake_engine") if estuary_target.mode == "fake" else None
    peers = await _busy_run(peer, rtc_peer, estuary_target, server)
    received = [e for one in peers for e in one.events if e.direction == "in" and not e.name.startswith("<")]
    bad = [e.describe() for e in received if not e.well_formed]
    expect(received, expected="events from the server", actual="none")
    expect(not bad, expected="exactly one object argument on every event", actual=bad)


FORMS: dict[str, Any] = {"no_argument": NO_ARGUMENT, "null": None, "object": {}}
JOIN_FORMS: dict[str, Any] = {**FORMS, "turn_mode": {"turn_mode": "push_to_talk"}}  # objects get the room


async def _token_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    await request_token(p, None)  # the canonical form works at all (a step of LK-1)
    for name, form in FORMS.items():
        watch = Stopwatch()
        await p.emit("livekit_token", form)
        got = await p.wait(("livekit_token", "livekit_error", "error"), timeout=10.0, since=watch.start)
        expect(
            got.name == "livekit_token",
            expected=f"a livekit_token reply to livekit_token sent with {name}",
            actual=got.describe(),
        )


async def _voice_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    await start_websocket_voice(p, None)  # the canonical forms work at all (steps of WS-1 and WS-3)
    await stop_websocket_voice(p, None)
    for name, form in FORMS.items():
        watch = Stopwatch()
        await p.emit("start_voice", form)
        got = await p.wait(("voice_started", "voice_error", "error"), timeout=10.0, since=watch.start)
        expect(
            got.name == "voice_started",
            expected=f"voice_started after start_voice sent with {name}",
            actual=got.describe(),
        )
        watch = Stopwatch()
        await p.emit("stop_voice", form)
        got = await p.wait(("voice_stopped", "error"), since=watch.start)
        expect(
            got.name == "voice_stopped",
            expected=f"voice_stopped after stop_voice sent with {name}",
            actual=got.describe(),
        )


async def _join_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    await livekit_handshake(p, rtc_peer(), timeout=p.target.timeout)  # {room} works (steps of LK-1/2/5)
    for name, form in JOIN_FORMS.items():
        reply, _ = await request_token(p, None)
        await join_room(rtc_peer(), reply, timeout=p.target.timeout)
        body = {"room": reply["room"], **form} if isinstance(form, dict) else form
        watch = Stopwatch()
        await p.emit("livekit_join", body)
        got = await p.wait(("livekit_ready", "livekit_error", "error"), timeout=READY_BOUND, since=watch.start)
        expect(
            got.name == "livekit_ready",
            expected=f"livekit_ready after livekit_join sent with {name}",
            actual=got.describe(),
        )


async def _leave_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    # Each form's answer is looked at before its room: a form refused with `error` is this case's
    # failure, and only a room that outlives an accepted leave is LK-9's business.
    first = rtc_peer()
    await livekit_handshake(p, first, timeout=p.target.timeout)
    sent = await leave_room(p, first, None, "null")
    with step("LK-9", "the room ends after livekit_leave (null)"):
        await first.wait_disconnected(timeout=max(0.1, LEAVE_BOUND - sent.lap()))
    for name, form in FORMS.items():
        room = rtc_peer()
        await livekit_handshake(p, room, timeout=p.target.timeout)
        sent = await leave_room(p, room, form, name)
        try:
            await room.wait_disconnected(timeout=max(0.1, LEAVE_BOUND - sent.lap()))
        except AssertionError as exc:
            raise AssertionError(f"after livekit_leave sent with {name}:\n{exc}") from exc


async def _playback_complete_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    # TEXT-4: a server accepts audio_playback_complete silently, in each form a client sends it;
    # the object form names a reply the server really sent.
    reply = await final_reply(p, "a reply whose playback completes")
    forms = {**FORMS, "message_id": {"message_id": reply.payload.get("message_id")}}
    for name, form in forms.items():
        watch = Stopwatch()
        await p.emit("audio_playback_complete", form)
        await still_serves(p, f"audio_playback_complete sent with {name}")
        refusal = p.seen("error", since=watch.start)
        expect(
            not refusal,
            expected=f"audio_playback_complete sent with {name} accepted silently (no error)",
            actual=refusal[0].describe() if refusal else "",
        )


async def _interrupt_forms(p: RawPeer, rtc_peer: RtcPeerFactory) -> None:
    with step("TEXT-3", "interrupt after client_interrupt {}"):
        await interrupted(p, {}, "{}")
    for name, form in FORMS.items():
        await interrupted(p, form, name)


FormsCheck = Callable[[RawPeer, RtcPeerFactory], Awaitable[None]]
EVENTS: dict[str, FormsCheck] = {
    "livekit_token": _token_forms,
    "start_voice+stop_voice": _voice_forms,
    "livekit_join": _join_forms,
    "livekit_leave": _leave_forms,
    "client_interrupt": _interrupt_forms,
    "audio_playback_complete": _playback_complete_forms,
}


@pytest.mark.estuary_case("WIRE-2", "MUST")
@pytest.mark.parametrize("event", list(EVENTS))
async def test_wire_2_client_events_accept_every_payload_form(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, event: str
) -> None:
    """Client→server events are accepted with no argument, with null, or with an object (every documented form of each), once the event works at all."""
    p = peer()
    await p.session()
    await EVENTS[event](p, rtc_peer)


# (event, payload, the field the error must name, whether voice must be started first)
MALFORMED: dict[str, tuple[str, Any, str | None, bool]] = {
    "text_textOnly_not_a_bool": ("text", {"text": "hi", "textOnly": "yes"}, "textOnly", False),
    "text_not_an_object": ("text", ["a", "list"], None, False),
    "say_line_text_not_a_string": ("say_line", {"text": 5}, "text", False),
    "client_interrupt_message_id_not_a_string": ("client_interrupt", {"message_id": 5}, "message_id", False),
    "livekit_token_turn_mode_unknown": ("livekit_token", {"turn_mode": 5}, "turn_mode", False),
    "livekit_join_room_not_a_string": ("livekit_join", {"room": 5}, "room", False),
    "start_voice_turn_mode_unknown": ("start_voice", {"turn_mode": 5}, "turn_mode", False),
    "audio_playback_complete_message_id_not_a_string": (
        "audio_playback_complete",
        {"message_id": 5},
        "message_id",
        False,
    ),
    "stream_audio_audio_not_a_string": ("stream_audio", {"audio": 5}, "audio", True),
    "stream_audio_bad_base64": ("stream_audio", {"audio": "***not base64***"}, "audio", True),
    "stream_audio_odd_bytes": ("stream_audio", {"audio": "AAAA"}, "audio", True),  # 3 bytes: not PCM16
}


def _names(message: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", message) is not None


@pytest.mark.estuary_case("WIRE-3", "MUST")
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_wire_3_malformed_payload_gets_error_naming_event_and_field(peer: PeerFactory, case: str) -> None:
    """A malformed payload to a known event gets `error {message}` naming the event and the field; the connection stays."""
    event, payload, field, needs_voice = MALFORMED[case]
    p = peer()
    await p.session()
    if needs_voice:
        await start_websocket_voice(p)
    if event == "livekit_token":  # the event must be answered at all (in time) before its errors count
        await request_token(p, None)
    watch = Stopwatch()
    await p.emit(event, payload)
    # WS-1 lets start_voice answer voice_error {error}; every other event answers error {message}.
    answers = ("error", "voice_error") if event == "start_voice" else ("error",)
    got = await p.wait(answers, since=watch.start)
    message = str(got.payload.get("message") or got.payload.get("error") or "")
    named = _names(message, event) and (field is None or _names(message, field))
    expect(
        named,
        expected=f"{got.name} naming {event!r}" + (f" and field {field!r}" if field else ""),
        actual=got.describe(),
    )
    await _still_serves(p, f"{event} sent malformed")


@pytest.mark.estuary_case("WIRE-3", "MUST")
async def test_wire_3_unknown_event_never_closes_the_connection(peer: PeerFactory) -> None:
    """An unknown event never closes the connection nor crashes the server."""
    p = peer()
    await p.session()
    for args in (NO_ARGUMENT, None, {"x": 1}, "text", 7):
        await p.emit("no_such_event_in_the_protocol", args)
    await _still_serves(p, "unknown events")
    q = peer("second")
    await q.session()  # the server as a whole still serves
    await _still_serves(q, "the first socket's unknown events")


async def _still_serves(p: RawPeer, after: str) -> None:
    await still_serves(p, after)
    expect(p.sio.connected, expected="the connection still open", actual="closed")


@pytest.mark.estuary_case("WIRE-4", "INFO")
async def test_wire_4_payload_keys_are_snake_case(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """Payload keys are snake_case, except session_info's camelCase extras and `textOnly`."""
    peers = await _busy_run(peer, rtc_peer, estuary_target, None)
    events: list[WireEvent] = [
        e for one in peers for e in one.events if e.direction == "in" and e.well_formed and not e.name.startswith("<")
    ]
    odd = sorted(
        {
            f"{e.name}.{key}"
            for e in events
            for key in e.payload
            if not SNAKE.match(key) and key not in CAMEL_EXTRAS.get(e.name, set())
        }
    )
    expect(not odd, expected="snake_case keys only", actual=odd)
