"""The fake STT recognises known recordings (the suite's utterances and the user's), through both
transports and at every sample rate; a script still wins; unknown audio keeps the default."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from fake_server.utterances import read_wav, suite_utterances
from pytest_estuary import audio
from pytest_estuary.livekit_server import LiveKitCredentials

BOUND = 10.0
SUITE = suite_utterances()
assert SUITE is not None, "the conformance package's utterances must be found"
FILES = sorted(SUITE.glob("*.wav"))


def said(wav: Path) -> str:
    return wav.with_suffix(".txt").read_text().strip()


def resampled(pcm: np.ndarray[Any, np.dtype[np.int16]], rate: int, to: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    positions = np.arange(round(len(pcm) * to / rate)) * rate / to
    return np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)


def wav_bytes(pcm: np.ndarray[Any, np.dtype[np.int16]], rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


def backwards_story() -> tuple[np.ndarray[Any, np.dtype[np.int16]], int]:
    """A recording no library holds: the suite's story, played backwards."""
    pcm, rate = read_wav(FILES[2])
    return pcm[::-1].copy(), rate


@pytest.fixture(scope="module")
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeEstuaryServer) -> None:
    fake.reset()


async def transcribe_over_websocket(
    fake: FakeEstuaryServer, make_peer: Any, pcm: np.ndarray[Any, np.dtype[np.int16]], rate: int
) -> str:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key, audio_sample_rate=rate)
    await peer.emit("start_voice", None)
    await peer.wait("voice_started")
    signal = np.concatenate([np.zeros(rate // 5, np.int16), pcm, np.zeros(rate, np.int16)])
    step = rate // 10
    for start in range(0, len(signal), step):
        await peer.emit("stream_audio", {"audio": base64.b64encode(signal[start : start + step].tobytes()).decode()})
    final = await peer.wait("stt_response", predicate=lambda p: p.get("is_final") is True, timeout=BOUND)
    await peer.close()
    return str(final["text"])


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("wav", FILES, ids=lambda p: p.stem)
async def test_websocket_recognises_the_suite_recordings_at_any_rate(
    fake: FakeEstuaryServer, make_peer: Any, wav: Path, rate: int
) -> None:
    pcm, wav_rate = read_wav(wav)
    assert await transcribe_over_websocket(fake, make_peer, resampled(pcm, wav_rate, rate), rate) == said(wav)


@pytest.mark.asyncio
async def test_unknown_audio_keeps_the_default_and_a_script_still_wins(fake: FakeEstuaryServer, make_peer: Any) -> None:
    tone = audio.utterance(pitch=150)
    assert await transcribe_over_websocket(fake, make_peer, tone, 48000) == "utterance 1"
    unknown, rate = backwards_story()
    assert await transcribe_over_websocket(fake, make_peer, unknown, rate) == "utterance 1"
    fake.script(transcripts=["scripted words"])
    pcm, rate = read_wav(FILES[0])
    assert await transcribe_over_websocket(fake, make_peer, pcm, rate) == "scripted words"


@pytest.mark.asyncio
async def test_user_recordings_from_the_api_a_directory_and_the_control_api(
    fake: FakeEstuaryServer, make_peer: Any, tmp_path: Path
) -> None:
    import urllib.request

    backwards, rate = backwards_story()
    louder = (backwards.astype(np.int32) * 2).clip(-32768, 32767).astype(np.int16)
    assert await transcribe_over_websocket(fake, make_peer, louder, rate) == "utterance 1"
    fake.add_utterance("the story told backwards", wav_bytes(backwards, rate))
    assert await transcribe_over_websocket(fake, make_peer, resampled(louder, rate, 24000), 24000) == (
        "the story told backwards"
    )
    (tmp_path / "greeting.wav").write_bytes(wav_bytes(resampled(backwards, rate, 48000), 48000))
    (tmp_path / "greeting.txt").write_text("a greeting from a directory\n")
    with FakeEstuaryServer(utterances=[tmp_path], suite_utterances=False) as other:
        assert await transcribe_over_websocket(other, make_peer, backwards, rate) == "a greeting from a directory"
        pcm, rate1 = read_wav(FILES[0])
        assert await transcribe_over_websocket(other, make_peer, pcm, rate1) == "utterance 1"  # no suite here
        body = b'{"transcript": "hello from the control API", "wav": "%s"}' % base64.b64encode(wav_bytes(pcm, rate1))
        request = urllib.request.Request(f"{other.url}/control/utterances", data=body, method="POST")
        request.add_header("Authorization", f"Bearer {other.control_token}")
        listed = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=BOUND).read().decode())
        assert "hello from the control API" in listed
        assert await transcribe_over_websocket(other, make_peer, pcm, rate1) == "hello from the control API"


@pytest.mark.asyncio
async def test_livekit_recognises_a_suite_recording_through_opus(
    fake: FakeEstuaryServer, make_peer: Any, make_voice: Any
) -> None:
    for wav in FILES[:2]:
        peer, voice = make_peer(fake.url), make_voice()
        await peer.session(fake.api_key, player_id=f"speaker-{wav.stem}")
        await voice.start(peer)
        pcm, rate = read_wav(wav)
        start = time.monotonic()
        voice.say(resampled(pcm, rate, 48000).tobytes())
        final = await peer.wait(
            "stt_response", predicate=lambda p: p.get("is_final") is True, since=start, timeout=BOUND
        )
        assert final["text"] == said(wav)
        await voice.close()
        await peer.close()
