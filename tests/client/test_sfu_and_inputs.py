"""LIFE-3 when the SFU itself goes away, and voice from a WAV file (the WavAudioInput path)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary import audio
from pytest_estuary.client import EstuaryClient, WavAudioInput
from pytest_estuary.livekit_server import LiveKitServer
from pytest_estuary.waiting import never_within

from .conftest import MakeClient

pytestmark = pytest.mark.asyncio


async def test_life_3_livekit_disconnected_once_when_the_sfu_dies() -> None:
    """A private livekit-server is killed under a connected room: livekit_disconnected, exactly once."""
    manager = LiveKitServer(stop_timeout=0.5)
    creds = await asyncio.to_thread(manager.start)
    try:
        with FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret)) as server:
            client = EstuaryClient(server.url, server.api_key, "c", "p-sfu", voice_transport="livekit",
                                   connect_timeout=2.0, leave_timeout=1.0)
            try:
                await client.connect()
                await client.start_voice()
                room = client.room
                await asyncio.to_thread(manager.stop)  # TERM, then KILL: the SFU is gone
                gone = await client.wait_for("livekit_disconnected", timeout=10, include_past=True)
                assert gone.room == room
                # a duplicate could only come from the client's teardown, bounded by leave_timeout
                await never_within(
                    lambda: [e.event for e in client.history].count("livekit_disconnected") > 1,
                    window=client.config.leave_timeout, what="a second livekit_disconnected",
                )
                assert client.transport is None and not client.audio_input.is_open
            finally:
                await client.disconnect()
    finally:
        await asyncio.to_thread(manager.stop)


async def test_wav_input_speaks_to_the_bot(fake: FakeEstuaryServer, make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "hello.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(audio.utterance(sample_rate=16000, pitch=150).tobytes())
    source = WavAudioInput(path)
    client = make_client(voice_transport="websocket", audio_input=source)
    await client.connect()
    await client.start_voice()
    said = await client.wait_for("stt_response", predicate=lambda r: r.is_final, timeout=10)
    assert said.text == "utterance 1" and source.samples_read > 0
    await client.stop_voice()
