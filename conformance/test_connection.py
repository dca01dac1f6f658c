"""Server conformance, section 1 (CONN): connecting, authenticating, timeouts."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from conformance.checks import Stopwatch, expect
from conformance.factories import PeerFactory, RtcPeerFactory
from conformance.handshake import livekit_handshake
from conformance.peer import NAMESPACE, RawPeer
from conformance.text import final_reply
from conformance.websocket_voice import start_websocket_voice, stream
from pytest_estuary import audio
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.verdicts import step

pytestmark = pytest.mark.asyncio

AuthStyle = Literal["connect", "event"]
AUTH_STYLES: list[AuthStyle] = ["connect", "event"]
AUTH_REQUIREMENT = {"connect": "CONN-2", "event": "CONN-3"}


@pytest.mark.estuary_case("CONN-1", "MUST")
async def test_conn_1_socketio_v4_namespace_sdk_over_websocket(peer: PeerFactory) -> None:
    """The server speaks Socket.IO v4 on /socket.io/, namespace /sdk, over the WebSocket transport."""
    p = peer()
    await p.open(auth=p.auth())
    expect(p.sio.transport() == "websocket", expected="transport 'websocket'", actual=p.sio.transport())
    expect(NAMESPACE in p.sio.namespaces, expected=f"namespace {NAMESPACE} connected", actual=p.sio.namespaces)


@pytest.mark.estuary_case("CONN-2", "MUST")
async def test_conn_2_auth_in_connect_packet(peer: PeerFactory, estuary_target: EstuaryTarget) -> None:
    """Authentication data in the namespace CONNECT packet opens a session."""
    p = peer()
    info = await p.session(style="connect", capabilities={"version": "1", "microphone": True, "speaker": True})
    expect(info.get("session_id"), expected="session_info with a session_id", actual=info)


@pytest.mark.estuary_case("CONN-3", "MUST")
async def test_conn_3_auth_by_authenticate_event(peer: PeerFactory) -> None:
    """A CONNECT without auth followed by an `authenticate` event opens a session."""
    p = peer()
    info = await p.session(style="event")
    expect(info.get("session_id"), expected="session_info with a session_id", actual=info)


@pytest.mark.estuary_case("CONN-4", "MUST")
@pytest.mark.parametrize("style", AUTH_STYLES)
async def test_conn_4_session_info_fields_and_bounds(
    peer: PeerFactory, style: AuthStyle, record_estuary_timing: Any
) -> None:
    """Success yields session_info with four non-empty strings echoing the ids: CONNECT acked within 1 s, session_info within 15 s."""
    p = peer()
    auth = p.auth()
    watch = Stopwatch()
    await p.open(auth=auth, style=style)
    connect_ack = watch.lap()
    with step(AUTH_REQUIREMENT[style], "a session opens"):
        event = await p.wait(("session_info", "auth_error"), timeout=15.0)
        expect(event.name == "session_info", expected="session_info", actual=event.describe())
    record_estuary_timing("connect_ack", connect_ack)
    record_estuary_timing("session_info", event.t - watch.start)
    expect(connect_ack <= 1.0, expected="namespace CONNECT acknowledged within 1 s", actual=f"{connect_ack:.3f} s")
    info = event.payload
    for key in ("session_id", "conversation_id", "character_id", "player_id"):
        value = info.get(key) if isinstance(info, dict) else None
        expect(isinstance(value, str) and value, expected=f"{key!r}: a non-empty string", actual=info)
    expect(
        info["character_id"] == auth["character_id"],
        expected=f"character_id {auth['character_id']!r} echoed",
        actual=info["character_id"],
    )
    expect(
        info["player_id"] == auth["player_id"],
        expected=f"player_id {auth['player_id']!r} echoed",
        actual=info["player_id"],
    )


BAD_AUTH: dict[str, dict[str, Any]] = {
    "unknown_api_key": {"api_key": "not-a-key-of-this-server"},
    "missing_character_id": {"character_id": None},
    "missing_player_id": {"player_id": None},
    "player_id_not_a_string": {"player_id": 12345},
}


@pytest.mark.estuary_case("CONN-5", "MUST")
@pytest.mark.parametrize("style", AUTH_STYLES)
@pytest.mark.parametrize("case", sorted(BAD_AUTH))
async def test_conn_5_bad_auth_gets_auth_error_and_no_service(
    peer: PeerFactory, estuary_target: EstuaryTarget, case: str, style: AuthStyle
) -> None:
    """Bad credentials (unknown key, missing ids, wrong types) yield auth_error {error} and no session_info nor service."""
    await peer("good-credentials").session(style=style)  # this way of authenticating works at all
    p = peer()
    auth = p.auth()
    for key, value in BAD_AUTH[case].items():
        if value is None:
            auth.pop(key)
        else:
            auth[key] = value
    await p.open(auth=auth, style=style)
    event = await p.wait(("auth_error", "session_info"))
    expect(event.name == "auth_error", expected=f"auth_error for {case}", actual=event.describe())
    error = event.payload.get("error") if isinstance(event.payload, dict) else None
    expect(isinstance(error, str) and error, expected="auth_error {error: non-empty text}", actual=event.payload)
    if p.sio.connected:
        await p.emit("text", {"text": "are you there?"})
    await p.quiet(("session_info", "bot_response"), within=1.0, since=0.0)


@pytest.mark.estuary_case("CONN-6", "SHOULD")
async def test_conn_6_events_before_auth_are_refused(peer: PeerFactory) -> None:
    """Events from a socket that has not authenticated get `error {message}` and are never acted upon."""
    p = peer()
    await p.open(auth=None, style="none")
    watch = Stopwatch()
    await p.emit("text", {"text": "hello before auth"})
    await p.emit("livekit_token", None)
    event = await p.wait("error", since=watch.start)
    message = event.payload.get("message") if isinstance(event.payload, dict) else None
    expect(isinstance(message, str) and message, expected="error {message: text}", actual=event.payload)
    await p.quiet(("bot_response", "livekit_token"), within=1.0, since=watch.start)


@pytest.mark.estuary_case("CONN-7", "MUST")
@pytest.mark.estuary_fake_only
async def test_conn_7_session_timeout_then_disconnect(peer: PeerFactory, estuary_server: Any) -> None:
    """session_timeout {reason: "inactivity", idle_seconds, timeout_seconds} is followed by the server disconnecting the socket."""
    p = peer()
    info = await p.session()
    estuary_server.trigger_session_timeout(player_id=info["player_id"])
    event = await p.wait("session_timeout")
    expect(
        _timeout_payload(event.payload, "inactivity"),
        expected='session_timeout {reason: "inactivity", idle_seconds: number, timeout_seconds: number}',
        actual=event.describe(),
    )
    await p.wait("<disconnect>", timeout=5.0)


def _timeout_payload(payload: Any, reason: str) -> bool:
    numbers = (int, float)
    return (
        payload.get("reason") == reason
        and isinstance(payload.get("idle_seconds"), numbers)
        and isinstance(payload.get("timeout_seconds"), numbers)
    )


@pytest.mark.estuary_case("CONN-7", "MUST")
@pytest.mark.estuary_fake_only
@pytest.mark.parametrize("transport", ["livekit", "websocket"])
async def test_conn_7_voice_timeout_releases_voice_and_keeps_text(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_server: Any, estuary_target: EstuaryTarget, transport: str
) -> None:
    """voice_timeout {reason: "voice_inactivity", idle_seconds, timeout_seconds} releases voice (room deleted, STT closed) but keeps the socket and text."""
    p = peer()
    info = await p.session()
    room = rtc_peer()
    if transport == "livekit":
        await livekit_handshake(p, room, timeout=estuary_target.timeout)
    else:
        await start_websocket_voice(p)
    estuary_server.trigger_voice_timeout(player_id=info["player_id"])
    event = await p.wait("voice_timeout")
    expect(
        _timeout_payload(event.payload, "voice_inactivity"),
        expected='voice_timeout {reason: "voice_inactivity", idle_seconds: number, timeout_seconds: number}',
        actual=event.describe(),
    )
    if transport == "livekit":
        await room.wait_disconnected(timeout=5.0)  # the room is deleted (LK-9's bound)
    else:
        await _stt_is_closed(p)
    await final_reply(p, "still there?")
    expect(p.sio.connected, expected="the socket still connected", actual="disconnected")


STT_SETTLE = 1.5  # after the speech ends, time for any recogniser to have sent its final transcript


async def _stt_is_closed(p: RawPeer) -> None:
    """Speech streamed after voice_timeout is never transcribed (refusing it with `error` is fine)."""
    watch = Stopwatch()
    speech = audio.utterance(
        duration=0.5, sample_rate=24000, tail=0.6
    )  # short: a server may still drop late audio quietly
    await stream(p, speech, 24000)
    await p.quiet("stt_response", within=len(speech) / 24000 + STT_SETTLE, since=watch.start)
