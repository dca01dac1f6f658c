"""WebSocket voice against the real fake server (WS, SEL-3, LIFE-1/2/4 on this transport)."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest

from fake_server import FakeEstuaryServer
from pytest_estuary import audio
from pytest_estuary.client import ErrorCode, EstuaryError
from pytest_estuary.client.websocket_voice import FRAME_MS
from pytest_estuary.waiting import never_within, wait_until

from .conftest import MakeClient, in_log

pytestmark = pytest.mark.asyncio
SHORT = audio.utterance(duration=0.5, lead=0.1, tail=0.5, pitch=150)  # one detectable utterance, quickly


def final(response: object) -> bool:
    return bool(getattr(response, "is_final", False))


async def settled_count(fake: FakeEstuaryServer, session_id: str) -> int:
    """The number of stream_audio chunks the fake got, once none came for two frame periods."""
    last = [-1, 0.0]
    loop = asyncio.get_running_loop()

    def settled() -> int | None:
        count = len(in_log(fake, "stream_audio", "in", session_id))
        if count != last[0]:
            last[0], last[1] = count, loop.time()
        return count if loop.time() - last[1] >= 2 * FRAME_MS / 1000 else None

    await wait_until(lambda: settled() is not None, timeout=2.0, awaited="stream_audio to stop arriving",
                     seen=lambda: last[0])
    return int(last[0])


def pcm_bytes(encoded: str) -> int:
    """Bytes of one stream_audio chunk as the fake's event log keeps it: whole, or ``<base64, N bytes>``."""
    shown = re.fullmatch(r"<base64, (\d+) bytes>", encoded)
    return int(shown.group(1)) if shown else len(base64.b64decode(encoded))


@pytest.mark.parametrize("rate", [24000, 16000])
async def test_ws_voice_round_trip_and_sel_3(fake: FakeEstuaryServer, make_client: MakeClient, rate: int) -> None:
    """SEL-3: no livekit_token; WS-2 chunks are base64 PCM16 of 20-100 ms at audio_sample_rate."""
    client = make_client(voice_transport="websocket", audio_sample_rate=rate)
    info = await client.connect()
    assert await client.start_voice() == "websocket" and client.transport == "websocket" and client.room is None
    await client.audio_input.say(audio.utterance(pitch=150))
    said = await client.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
    assert said.text == "utterance 1"
    await client.wait_for("bot_response", predicate=final, timeout=10, include_past=True)
    await client.bot_audio.wait_for_sound(0.3, timeout=10)
    assert client.bot_audio.sample_rate == rate and client.bot_audio.heard_voice(220.0)
    await client.stop_voice()
    assert not [e for e in fake.events.all() if e.name.startswith("livekit")]
    assert in_log(fake, "start_voice", "in", info.session_id) == [None]
    assert in_log(fake, "stop_voice", "in", info.session_id) == [None]
    chunks = in_log(fake, "stream_audio", "in", info.session_id)
    sizes = {pcm_bytes(c["audio"]) // 2 for c in chunks}
    assert sizes and all(0.02 * rate <= n <= 0.1 * rate for n in sizes), sizes
    assert client.history[-1].event == "voice_stopped" and not client.audio_input.is_open


async def test_ws_life_1_mute_stops_stream_audio(fake: FakeEstuaryServer, make_client: MakeClient) -> None:
    client = make_client(voice_transport="websocket")
    info = await client.connect()
    await client.start_voice()
    client.toggle_mute()
    before = await settled_count(fake, info.session_id)  # a chunk sent just before the mute may be in flight
    await client.audio_input.say(SHORT)
    assert len(in_log(fake, "stream_audio", "in", info.session_id)) == before, "audio was sent while muted"
    assert not [e for e in client.history if e.event == "stt_response"]
    client.toggle_mute()
    await client.audio_input.say(SHORT)
    await client.wait_for("stt_response", predicate=final, timeout=10, include_past=True)
    await client.stop_voice()


async def test_ws_voice_error_is_connection_failed_and_nothing_leaks(fake: FakeEstuaryServer,
                                                                    make_client: MakeClient) -> None:
    client = make_client(voice_transport="websocket", voice_start_timeout=0.5)
    await client.connect()
    fake.misbehave(client.config.player_id, delay={"start_voice": 1.0})
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT and "voice_started" in str(failure.value)
    assert client.transport is None and not client.audio_input.is_open and not client._emitter._waiters
    fake.misbehave(client.config.player_id, delay={})
    # the late voice_started (1 s delay) arrives and must change nothing
    await wait_until(lambda: any(e.event == "voice_started" for e in client.history), timeout=2.0,
                     awaited="the late voice_started")
    assert client.transport is None
    await client.start_voice()
    await client.stop_voice()


async def test_ws_voice_timeout_releases_voice_text_keeps_working(
    fake: FakeEstuaryServer, make_client: MakeClient, tolerated: list[str]
) -> None:
    """LIFE-5 on WebSocket: voice_timeout ends voice (no more stream_audio), text still works."""
    # A chunk already on the wire when the server sends voice_timeout arrives after it: no client can
    # avoid that one. The check below (nothing sent after voice_timeout arrived) is the real rule.
    tolerated.append("stream_audio with no voice started")
    client = make_client(voice_transport="websocket")
    info = await client.connect()
    await client.start_voice()
    await asyncio.to_thread(fake.trigger_voice_timeout, client.config.player_id)
    await client.wait_for("voice_timeout", timeout=5, include_past=True)
    await wait_until(lambda: client.transport is None and not client.audio_input.is_open,
                     timeout=client.config.leave_timeout, awaited="voice released on the client")
    count = await settled_count(fake, info.session_id)
    # a running pump sends one chunk per FRAME_MS: five frame periods without one prove it stopped
    await never_within(lambda: len(in_log(fake, "stream_audio", "in", info.session_id)) > count,
                       window=5 * FRAME_MS / 1000, what="stream_audio after voice_timeout")
    await client.send_text("hello")
    await client.wait_for("bot_response", predicate=final, timeout=5)
