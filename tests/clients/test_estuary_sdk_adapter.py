"""The estuary-sdk adapter against the embedded fake server and the real livekit-server: text, voice on
both transports through the SDK's own VoiceSession with a synthetic microphone, errors converted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from fake_server import FakeEstuaryServer
from pytest_estuary import audio
from pytest_estuary.clients.estuary_sdk import EstuarySdkClient
from pytest_estuary.clients.interface import ClientFailure, ClientSettings
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.waiting import wait_until

pytestmark = pytest.mark.asyncio
SPEECH = audio.utterance(duration=0.6, lead=0.1, tail=0.8, pitch=150)
SDK_ERROR = "estuary_sdk.errors.EstuaryError"

MakeSdk = Callable[..., EstuarySdkClient]


@pytest_asyncio.fixture
async def make_sdk(estuary_server: FakeEstuaryServer, estuary_target: EstuaryTarget) -> AsyncIterator[MakeSdk]:
    """``make_sdk(**settings)``: an adapter for the fake with its own player id; all closed at teardown."""
    made: list[EstuarySdkClient] = []

    def make(**overrides: Any) -> EstuarySdkClient:
        settings = ClientSettings(
            server_url=estuary_target.url,
            api_key=estuary_target.api_key,
            character_id="char-1",
            player_id=f"sdk-{uuid.uuid4().hex[:8]}",
            **overrides,
        )
        made.append(EstuarySdkClient(settings))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()
    assert not any(recorder.is_open for client in made for recorder in client._recorders)


def is_final(payload: dict[str, Any]) -> bool:
    return payload.get("is_final") is True


def session_of(client: EstuarySdkClient) -> str:
    session_id = client.seen("connected")[-1]["session"]["session_id"]
    assert isinstance(session_id, str)
    return session_id


def received(fake: FakeEstuaryServer, name: str, session_id: str) -> list[Any]:
    return [e.payload for e in fake.events.find(name=name, direction="in", session_id=session_id)]


async def arrives(fake: FakeEstuaryServer, name: str, session_id: str) -> None:
    await wait_until(
        lambda: bool(received(fake, name, session_id)),
        timeout=5,
        awaited=f"{name} from the SDK at the fake",
        seen=lambda: [e.name for e in fake.events.find(direction="in", session_id=session_id)],
    )


async def test_errors_before_connect_keep_the_sdk_error(make_sdk: MakeSdk) -> None:
    client = make_sdk()
    for action in (client.send_text("hi"), client.start_voice()):
        with pytest.raises(ClientFailure) as failure:
            await action
        assert failure.value.code == "NOT_CONNECTED" and failure.value.raw == SDK_ERROR
    state = await client.state()
    assert (state.transport, state.voice_active, state.input_open) == (None, False, False)


async def test_refused_connect_is_connection_failed_and_aclose_releases_it() -> None:
    """Nothing listens: CONNECTION_FAILED with the cause kept; aclose closes the HTTP session the SDK leaves."""
    client = EstuarySdkClient(
        ClientSettings(server_url="http://127.0.0.1:9", api_key="k", character_id="c", player_id="p")
    )
    try:
        with pytest.raises(ClientFailure) as failure:
            await client.connect()
        assert failure.value.code == "CONNECTION_FAILED" and failure.value.raw == SDK_ERROR
        assert failure.value.cause is not None
    finally:
        await client.aclose()
    http = client.client._socket.sio.eio.http
    assert http is None or http.closed


async def test_connect_and_text_round_trip(make_sdk: MakeSdk) -> None:
    client = make_sdk()
    await client.connect()
    session = client.seen("connected")[-1]["session"]
    assert session["session_id"] and session.get("livekit_token") in (None, "<redacted>")
    await client.send_text("hello there")
    reply = await client.wait_for("bot_response", is_final, timeout=10, include_past=True)
    assert reply["text"] and reply["message_id"]
    await client.disconnect()
    await client.wait_for("disconnected", timeout=5, include_past=True)
    assert client.info.name == "estuary-sdk" and client.info.version == "0.8.0"


@pytest.mark.parametrize("transport", ["websocket", "auto"])
async def test_websocket_voice_hears_say(estuary_server: FakeEstuaryServer, make_sdk: MakeSdk, transport: str) -> None:
    """WebSocket voice: the synthetic microphone reaches the fake's STT; "auto" is WebSocket in 0.8.0."""
    client = make_sdk(voice_transport=transport)
    await client.connect()
    assert await client.start_voice() == "websocket"
    state = await client.state()
    assert state.voice_active and state.input_open and state.room is None
    await client.say(SPEECH.tobytes(), 48000)
    heard = await client.wait_for("stt_response", is_final, timeout=10, include_past=True)
    assert heard["text"]
    await client.stop_voice()
    state = await client.state()
    assert not state.voice_active and not state.input_open
    session_id = session_of(client)
    await arrives(estuary_server, "stop_voice", session_id)  # the SDK emits fire-and-forget
    assert received(estuary_server, "stream_audio", session_id)
    assert not received(estuary_server, "livekit_token", session_id)


async def test_livekit_voice_hears_say(estuary_server: FakeEstuaryServer, make_sdk: MakeSdk) -> None:
    client = make_sdk(voice_transport="livekit")
    await client.connect()
    assert await client.start_voice() == "livekit"
    connected = await client.wait_for("livekit_connected", timeout=5, include_past=True)
    state = await client.state()
    assert state.transport == "livekit" and state.voice_active and state.input_open
    assert state.room and connected["room"] == state.room
    await client.say(SPEECH.tobytes(), 48000)
    heard = await client.wait_for("stt_response", is_final, timeout=15, include_past=True)
    assert heard["text"]
    with pytest.raises(ClientFailure) as failure:  # livekit 1.2.1's LocalParticipant has no set_microphone_enabled
        await client.toggle_mute()
    assert failure.value.code is None and failure.value.raw == "builtins.AttributeError"
    assert (await client.state()).muted  # flipped before the call that raised
    await client.stop_voice()
    state = await client.state()
    assert not state.voice_active and not state.input_open and state.transport is None
    await arrives(estuary_server, "livekit_leave", session_of(client))


async def test_unavailable_microphone_leaves_voice_running(
    estuary_server: FakeEstuaryServer, make_sdk: MakeSdk
) -> None:
    """0.8.0 has no MICROPHONE_DENIED: the recorder's RuntimeError escapes after voice started, which stays."""
    client = make_sdk(voice_transport="websocket", microphone="unavailable")
    await client.connect()
    with pytest.raises(ClientFailure) as failure:
        await client.start_voice()
    assert failure.value.code is None and failure.value.raw == "builtins.RuntimeError"
    assert failure.value.cause is not None and failure.value.cause.startswith("PortAudioError")
    assert any("Audio input open failed" in line for line in client.warnings)
    state = await client.state()
    assert state.voice_active and not state.input_open
    await client.stop_voice()
    assert not (await client.state()).voice_active


async def test_room_connect_failure_is_a_raw_livekit_error(
    estuary_server: FakeEstuaryServer, make_sdk: MakeSdk
) -> None:
    """A rejected token: livekit.rtc's ConnectError escapes as is (no CONNECTION_FAILED), its message the
    SFU's reason with the JWT cut out; nothing stays active and the next start succeeds."""
    client = make_sdk(voice_transport="livekit")
    estuary_server.misbehave(player_id=client.player_id, token_wrong_secret=True)
    await client.connect()
    with pytest.raises(ClientFailure) as failure:
        await client.start_voice()
    assert failure.value.code is None and failure.value.raw == "livekit.rtc.room.ConnectError"
    assert "401" in failure.value.message and "eyJ" not in failure.value.message
    state = await client.state()
    assert (state.transport, state.room, state.voice_active, state.input_open) == (None, None, False, False)
    estuary_server.misbehave(player_id=client.player_id, token_wrong_secret=False)
    assert await client.start_voice() == "livekit"
