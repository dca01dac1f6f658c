"""LiveKit voice against the real fake server and the real livekit-server, by rule ID."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator

import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from fake_server.stt import END_MS as STT_END_MS
from pytest_estuary import audio
from pytest_estuary.client import ErrorCode, EstuaryClient, EstuaryError, LiveKitDisconnected, SttResponse
from pytest_estuary.client.livekit_voice import DIAGNOSE_TIMEOUT
from pytest_estuary.client.signalling import backoff
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.waiting import never_within, wait_until

from .conftest import MakeClient, in_log

pytestmark = pytest.mark.asyncio
SHORT = audio.utterance(duration=0.5, lead=0.1, tail=0.5, pitch=150)  # one detectable utterance, quickly
BOT_PITCH = 220.0


def final(response: object) -> bool:
    return bool(getattr(response, "is_final", False))


def assert_nothing_leaked(client: EstuaryClient) -> None:
    """ERR-7: no voice, no open input, no waiters or background tasks left."""
    assert client.transport is None and client.room is None
    assert not client.audio_input.is_open
    assert not client._emitter._waiters, "a wait listener was left behind"
    assert not client._tasks


async def rooms_gone(fake: FakeEstuaryServer, timeout: float = 5.0) -> list[str]:
    """The fake's live rooms once none is left (LK-9: within 5 s); WaitTimeout names those that stayed."""

    async def none_left() -> bool:
        return not await asyncio.to_thread(fake.live_rooms)

    await wait_until(none_left, timeout=timeout, awaited="every LiveKit room deleted", seen=fake.live_rooms)
    return []


def livekit_disconnects(client: EstuaryClient) -> list[LiveKitDisconnected]:
    return [e.payload for e in client.history if e.event == "livekit_disconnected"]


async def no_second_disconnect(client: EstuaryClient, expected: int) -> None:
    """LIFE-3 "exactly once": a duplicate could only come from the room's own disconnect during the
    client's teardown, and every teardown step is bounded by leave_timeout: watch that long."""
    await never_within(lambda: len(livekit_disconnects(client)) > expected, window=client.config.leave_timeout,
                       what=f"livekit_disconnected number {expected + 1}", seen=lambda: livekit_disconnects(client))


async def test_lk_handshake_order_and_payloads(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    """Section 4: livekit_token(null) → token → connect → publish → livekit_join{room} → livekit_ready."""
    client = make_client(voice_transport="livekit")
    info = await client.connect()
    rooms: list[str] = []
    client.on("livekit_connected", rooms.append)
    assert await client.start_voice() == "livekit"
    assert client.transport == "livekit" and client.room and rooms == [client.room]  # SEL-6, LIFE-3
    names = [(e.direction, e.name) for e in fake.events.find(session_id=info.session_id)
             if e.name.startswith("livekit")]
    assert names == [("in", "livekit_token"), ("out", "livekit_token"), ("in", "livekit_join"),
                     ("out", "livekit_ready")]
    assert in_log(fake, "livekit_token", "in", info.session_id) == [None]  # null, the TypeScript convention
    assert in_log(fake, "livekit_join", "in", info.session_id) == [{"room": client.room}]
    await client.stop_voice()


async def test_lk_microphone_track_published_and_bot_heard(fake: FakeEstuaryServer, make_client: MakeClient,
                                                          livekit_server: LiveKitCredentials) -> None:
    """LK-6/LK-7/LK-8 through the client: the mic track is heard (stt), the bot's track is recorded."""
    from livekit import api

    client = make_client(voice_transport="livekit")
    await client.connect()
    await client.start_voice()
    # publish_track returns on the server's ack; its participant list shows the track a moment later,
    # once the media path is up, and livekit_ready no longer waits for a bot to join meanwhile.
    async with api.LiveKitAPI(livekit_server.url.replace("ws", "http", 1), livekit_server.api_key,
                              livekit_server.api_secret) as lk:

        async def my_tracks() -> list[tuple[str, int]]:
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=client.room))
            mine = [p for p in people.participants if p.identity == client.config.player_id]
            return [(t.name, t.source) for t in mine[0].tracks] if mine else []

        tracks = await wait_until(my_tracks, timeout=5.0, awaited="the client's published track on the SFU")
    assert tracks == [("microphone", api.TrackSource.MICROPHONE)]
    await client.audio_input.say(audio.utterance(pitch=150))
    heard = await client.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
    assert heard.text == "utterance 1"
    await client.bot_audio.wait_for_sound(0.3, timeout=10)
    await wait_until(lambda: client.bot_audio.heard_voice(BOT_PITCH), timeout=5.0,
                     awaited=f"the bot's {BOT_PITCH:.0f} Hz voice", seen=lambda: client.bot_audio)
    await client.stop_voice()


async def test_seed_example_livekit_voice_chat(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    """The seed page's "Example: LiveKit Voice Chat", in Python."""
    voice = make_client(voice_transport="livekit")
    seen: list[str] = []
    voice.on("connected", lambda info: seen.append("connected"))
    voice.on("livekit_connected", lambda room: seen.append(f"livekit_connected({room})"))
    voice.on("stt_response", lambda r: r.is_final and seen.append(f"you said: {r.text}"))
    voice.on("bot_response", lambda r: r.is_final and seen.append(f"bot: {r.text}"))
    voice.on("livekit_disconnected", lambda: seen.append("livekit_disconnected"))

    await voice.connect()
    await voice.start_voice()
    room = voice.room
    await voice.audio_input.say()  # default synthetic utterance (pitch 150)
    said = await voice.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
    reply = await voice.wait_for("bot_response", predicate=final, timeout=10, include_past=True)
    await voice.bot_audio.wait_for_sound(0.3, timeout=10)
    await voice.stop_voice()  # emits livekit_disconnected before it returns
    assert seen == ["connected", f"livekit_connected({room})", f"you said: {said.text}", f"bot: {reply.text}",
                    "livekit_disconnected"]


async def test_sel_5_server_without_livekit_times_out_no_fallback(fake: FakeEstuaryServer,
                                                                  make_client: MakeClient) -> None:
    """SEL-5/ERR-2: auto + a server that never answers livekit_token → CONNECTION_TIMEOUT, no WebSocket."""
    client = make_client(token_timeout=0.5)
    info = await client.connect()
    fake.misbehave(client.config.player_id, livekit_disabled=True)
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
    assert "livekit_token" in str(failure.value) and failure.value.__cause__ is not None
    assert not in_log(fake, "start_voice", "in", info.session_id)
    assert_nothing_leaked(client)


async def test_err_2_late_token_reply_is_a_timeout_then_retry_works(fake: FakeEstuaryServer,
                                                                    make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit", token_timeout=0.5)
    await client.connect()
    fake.misbehave(client.config.player_id, delay={"livekit_token": 1.0})
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
    assert_nothing_leaked(client)
    # the late reply arrives (its delay is 1 s) and must be ignored
    await wait_until(lambda: any(e.event == "livekit_token" for e in client.history), timeout=2.0,
                     awaited="the late livekit_token reply")
    fake.misbehave(client.config.player_id, delay={})
    assert await client.start_voice() == "livekit"  # ERR-7: the next start succeeds
    await client.stop_voice()


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"token_wrong_secret": True}, "401"),
        ({"token_expired": True}, "401"),
        ({"token_unreachable_url": True}, "could not connect"),
        ({"livekit_refused": "no voice for you"}, "no voice for you"),
        ({"token_reply_missing": "url"}, "'url'"),
    ],
    ids=["wrong-secret", "expired", "unreachable", "livekit_error", "reply-missing-url"],
)
async def test_err_3_5_7_connection_failed_with_reason_then_retry(
    fake: FakeEstuaryServer, make_client: MakeClient, settings: dict[str, object], needle: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(voice_transport="livekit", connect_timeout=5.0)
    await client.connect()
    fake.misbehave(client.config.player_id, **settings)
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_FAILED, failure.value
    assert needle in str(failure.value)
    assert not re.search(r"eyJ[\w-]{2,}", str(failure.value)), "a JWT leaked into the error message"
    assert not re.search(r"eyJ[\w-]{2,}", caplog.text), "a JWT leaked into the logs"
    if "livekit_refused" not in settings and "token_reply_missing" not in settings:
        assert failure.value.__cause__ is not None  # ERR-5: the LiveKit exception is kept
    assert_nothing_leaked(client)
    fake.misbehave(client.config.player_id, **{k: None if isinstance(v, str) else False for k, v in settings.items()})
    await client.start_voice()
    assert client.transport == "livekit"
    await client.stop_voice()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_err_3_room_that_never_answers_is_bounded(black_hole: int, livekit_server: LiveKitCredentials) -> None:
    """ERR-3: a LiveKit URL that accepts but never answers → CONNECTION_FAILED within connect_timeout."""
    config = LiveKitConfig(f"ws://127.0.0.1:{black_hole}", livekit_server.api_key, livekit_server.api_secret)
    # No warm-up: a bot of the fake's own would connect to the black hole too, and the fake's stop
    # would then wait for its worker (1 run in 6 took 11 s longer)
    with FakeEstuaryServer(livekit=config, bot_warmup=False) as server:
        client = EstuaryClient(server.url, server.api_key, "c", "p-blackhole", voice_transport="livekit",
                               connect_timeout=1.0)
        await client.connect()
        with pytest.raises(EstuaryError) as failure:
            await client.start_voice()
        ended = time.monotonic()
        token = next(e for e in client.history if e.event == "livekit_token")  # the room phase starts here
        took = ended - token.t
        await client.disconnect()
    assert failure.value.code is ErrorCode.CONNECTION_FAILED and "within 1 s" in str(failure.value)
    bound = 1.0 + DIAGNOSE_TIMEOUT  # connect_timeout, then the bounded /rtc/validate diagnosis
    assert bound - 0.05 <= took < bound + 1.0, f"the room connect bound was not kept: {took:.2f} s for {bound:.1f} s"


async def test_err_8_no_livekit_ready_is_a_timeout(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit", ready_timeout=0.5)
    info = await client.connect()
    fake.misbehave(client.config.player_id, no_livekit_ready=True)
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT and "livekit_ready" in str(failure.value)
    assert_nothing_leaked(client)
    assert in_log(fake, "livekit_leave", "in", info.session_id), "the server was told to drop the room"
    assert await rooms_gone(fake) == []


@pytest.mark.parametrize("setting", ["ready_wrong_room", "token_other_room"])
async def test_err_9_room_mismatch_names_both_rooms(fake: FakeEstuaryServer, make_client: MakeClient,
                                                   setting: str) -> None:
    client = make_client(voice_transport="livekit")
    await client.connect()
    fake.misbehave(client.config.player_id, **{setting: True})
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_FAILED and "mismatch" in str(failure.value)
    assert str(failure.value).count("'estuary-") == 2, failure.value
    assert_nothing_leaked(client)


async def test_err_4_microphone_denied(make_client: MakeClient, tmp_path: object) -> None:
    from pytest_estuary.client import MicrophoneAudioInput, WavAudioInput

    for source, needle in ((MicrophoneAudioInput(), "sounddevice"), (WavAudioInput("/nonexistent.wav"), "nonexistent")):
        client = make_client(voice_transport="livekit", audio_input=source)
        await client.connect()
        with pytest.raises(EstuaryError) as failure:
            await client.start_voice()
        assert failure.value.code is ErrorCode.MICROPHONE_DENIED and needle in str(failure.value)
        assert failure.value.__cause__ is not None
        assert_nothing_leaked(client)


async def test_err_6_misuse_codes(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client()
    for call in (client.start_voice(), client.send_text("hi"), client.stop_voice()):
        with pytest.raises(EstuaryError) as failure:
            await call
        assert failure.value.code is ErrorCode.NOT_CONNECTED
    await client.connect()
    with pytest.raises(EstuaryError) as failure:
        await client.stop_voice()
    assert failure.value.code is ErrorCode.VOICE_NOT_ACTIVE
    await client.start_voice()
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.VOICE_ALREADY_ACTIVE
    await client.stop_voice()
    bad = make_client(api_key="est-wrong-key")
    with pytest.raises(EstuaryError) as failure:
        await bad.connect()
    assert failure.value.code is ErrorCode.AUTH_FAILED and "est-wrong" not in str(failure.value)


async def test_life_1_muted_microphone_reaches_no_one(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit")
    await client.connect()
    await client.start_voice()
    assert client.toggle_mute() is True and client.is_muted
    await client.audio_input.say(SHORT)
    # say() returns once SHORT's 0.5 s tail was read; the fake STT would end the utterance after END_MS of
    # that quiet, so a transcript of audio that got through would be out by then plus the media path (0.1 s).
    await never_within(lambda: any(e.event == "stt_response" for e in client.history),
                       window=STT_END_MS / 1000 + 0.1, what="a transcript of muted speech")
    assert client.toggle_mute() is False
    await client.audio_input.say(SHORT)
    await client.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
    await client.stop_voice()


async def test_life_2_stop_voice_leaves_and_restarts(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit")
    info = await client.connect()
    await client.start_voice()
    room = client.room
    await client.stop_voice()
    assert in_log(fake, "livekit_leave", "in", info.session_id) == [None]
    assert_nothing_leaked(client)
    assert room not in await rooms_gone(fake)
    await client.start_voice()
    assert client.room and client.room != room
    await client.stop_voice()


async def test_life_3_disconnected_once_when_server_deletes_room(fake: FakeEstuaryServer,
                                                                 make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit", leave_timeout=1.0)
    await client.connect()
    await client.start_voice()
    room = client.room
    await asyncio.to_thread(fake.trigger_voice_timeout, client.config.player_id)
    gone = await client.wait_for("livekit_disconnected", timeout=5, include_past=True)
    assert gone.room == room
    await no_second_disconnect(client, 1)
    assert_nothing_leaked(client)
    await client.send_text("still there?")  # LIFE-5: text keeps working after voice_timeout
    await client.wait_for("bot_response", predicate=final, timeout=5)
    await client.start_voice()
    await client.stop_voice()
    await no_second_disconnect(client, 2)
    assert len(livekit_disconnects(client)) == 2


async def test_life_3_disconnected_once_when_socket_drops_then_reconnects(fake: FakeEstuaryServer,
                                                                          make_client: MakeClient) -> None:
    client = make_client(voice_transport="livekit", leave_timeout=1.0)
    first = await client.connect()
    await client.start_voice()
    fake.misbehave(client.config.player_id, drop_socket_at="text")
    await client.send_text("drop me")
    await client.wait_for("livekit_disconnected", timeout=5)
    again = await client.wait_for("connected", timeout=5)
    assert again.reconnect and again.session.session_id != first.session_id
    await no_second_disconnect(client, 1)
    # the dropped socket's aiohttp session is closed in the background: one socket, never two
    await wait_until(lambda: not client._signalling._dropping, timeout=client.config.leave_timeout,
                     awaited="the dropped socket to be closed")
    assert client._signalling.open_sockets == 1
    assert_nothing_leaked(client)


async def test_life_5_session_timeout_ends_without_reconnect(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client()
    await client.connect()
    await asyncio.to_thread(fake.trigger_session_timeout, client.config.player_id)
    await client.wait_for("session_timeout", timeout=5, include_past=True)
    gone = await client.wait_for("disconnected", timeout=5, include_past=True)
    assert not gone.will_reconnect
    # a reconnect would announce itself backoff(1) after the disconnect: watch the first two steps
    await never_within(lambda: any(e.event == "reconnecting" for e in client.history),
                       window=backoff(1) + backoff(2), what="a reconnect after session_timeout")
    assert not client.is_connected
    assert [e.event for e in client.history].count("connected") == 1


@pytest.mark.parametrize("auth_style", ["event", "connect"])
async def test_auth_styles(fake: FakeEstuaryServer, make_client: MakeClient, auth_style: str) -> None:
    """CONN-2/CONN-3: both ways of authenticating give a session."""
    client = make_client(auth_style=auth_style)
    info = await client.connect()
    assert info.player_id == client.config.player_id and client.session_info == info
    sent = [e for e in fake.events.find(name="authenticate", direction="in")
            if isinstance(e.payload, dict) and e.payload.get("player_id") == info.player_id]
    connect_auth = [e for e in fake.events.find(name="connect", direction="in")
                    if isinstance(e.payload, dict) and e.payload.get("player_id") == info.player_id]
    assert (len(sent), len(connect_auth)) == ((1, 0) if auth_style == "event" else (0, 1))


async def test_life_4_same_events_on_both_transports(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    kinds = {}
    for transport in ("livekit", "websocket"):
        client = make_client(voice_transport=transport)
        await client.connect()
        await client.start_voice()
        assert client.transport == transport
        await client.audio_input.say(audio.utterance(pitch=150))
        said = await client.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
        reply = await client.wait_for("bot_response", predicate=final, timeout=10, include_past=True)
        kinds[transport] = (type(said), said.text, type(reply))
        await client.bot_audio.wait_for_sound(0.3, timeout=10)
        await client.stop_voice()
    assert kinds["livekit"] == kinds["websocket"] == (SttResponse, "utterance 1", kinds["livekit"][2])
