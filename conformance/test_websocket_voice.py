"""Server conformance, section 5 (WS): voice over the Socket.IO connection itself."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import Stopwatch, expect, loosely_matches
from conformance.factories import PeerFactory
from conformance.peer import NO_ARGUMENT
from conformance.rtc_peer import read_wav
from conformance.text import final_reply
from conformance.websocket_voice import START_BOUND, start_websocket_voice, stop_websocket_voice, stream
from pytest_estuary import audio

pytestmark = pytest.mark.asyncio

START_FORMS = {"no_argument": NO_ARGUMENT, "null": None, "turn_mode": {"turn_mode": "server_vad"}}
REFUSAL_WINDOW = 1.0  # an `error` for audio comes at once (the fake answers in ms); 1 s is generous


@pytest.mark.estuary_case("WS-1", "MUST")
async def test_ws_1_start_voice_acknowledged_within_10s(peer: PeerFactory, record_estuary_timing: Any) -> None:
    """`start_voice` (no argument, null, or {turn_mode}) is answered with `voice_started {}` within 10 s (or `voice_error {error}`), sent once STT is open."""
    p = peer()
    await p.session()
    for form, payload in START_FORMS.items():
        watch = Stopwatch()
        await p.emit("start_voice", payload)
        got = await p.wait(("voice_started", "voice_error"), timeout=START_BOUND, since=watch.start)
        record_estuary_timing(f"start_voice_ack[{form}]", watch.lap())
        if got.name == "voice_error":  # allowed by WS-1
            expect(got.payload.get("error"), expected="voice_error {error: non-empty text}", actual=got.describe())
            return
        # Acked only after STT is open: audio sent right after the ack is taken, not refused.
        after_ack = Stopwatch()
        await stream(p, audio.silence(0.2, 24000), 24000)
        await p.quiet("error", within=REFUSAL_WINDOW, since=after_ack.start)
        await stop_websocket_voice(p)


@pytest.mark.estuary_case("WS-2", "MUST")
@pytest.mark.parametrize("sample_rate", [24000, 16000])
async def test_ws_2_streamed_speech_is_transcribed(
    peer: PeerFactory,
    sample_rate: int,
    utterance_files: list[tuple[Path, str]],
) -> None:
    """`stream_audio {audio: base64 PCM16 LE mono}` at the session's audio_sample_rate (24000 default, 16000 too) yields stt_response."""
    wav, said = utterance_files[1]
    p = peer()
    await p.session(audio_sample_rate=sample_rate)
    await start_websocket_voice(p)
    watch = Stopwatch()
    await stream(p, audio.concat(read_wav(wav, sample_rate), audio.silence(0.8, sample_rate)), sample_rate)
    final = await p.wait("stt_response", predicate=lambda e: e.payload.get("is_final") is True, since=watch.start)
    text = str(final.payload.get("text", ""))
    expect(loosely_matches(text, said), expected=f"a transcript close to {said!r}", actual=text)


@pytest.mark.estuary_case("WS-2", "MUST")
@pytest.mark.parametrize(
    ("case", "payload"), [("invalid_base64", "%%%"), ("odd_byte_count", base64.b64encode(b"\x01\x02\x03").decode())]
)
async def test_ws_2_bad_audio_gets_error_and_connection_stays(peer: PeerFactory, case: str, payload: str) -> None:
    """Invalid base64 or an odd byte count in stream_audio gets `error`, and the connection stays."""
    p = peer()
    await p.session()
    await start_websocket_voice(p)
    watch = Stopwatch()
    await p.emit("stream_audio", {"audio": payload})
    await p.wait("error", since=watch.start)
    await stop_websocket_voice(p)
    expect(p.sio.connected, expected="connection still open", actual="closed")


@pytest.mark.estuary_case("WS-3", "MUST")
async def test_ws_3_stop_voice_acknowledged(peer: PeerFactory, utterance_files: list[tuple[Path, str]]) -> None:
    """`stop_voice` is answered with `voice_stopped {}` once STT is closed, and only once."""
    p = peer()
    await p.session()
    await start_websocket_voice(p)
    watch = Stopwatch()
    await p.emit("stop_voice", None)
    got = await p.wait("voice_stopped", since=watch.start)
    ack = got.t - watch.start
    # STT closed before the ack: speech sent after it is never transcribed. No second ack either.
    # The window: the speech, plus 3x this server's own ack time, at least 1.5 s for a recogniser.
    wav, _ = utterance_files[1]
    speech = audio.concat(read_wav(wav, 24000), audio.silence(0.8, 24000))
    after = Stopwatch()
    await stream(p, speech, 24000)
    window = len(speech) / 24000 + max(1.5, 3 * ack)
    await p.quiet(("stt_response", "voice_stopped"), within=window, since=after.start)


@pytest.mark.estuary_case("WS-4", "SHOULD")
async def test_ws_4_bot_voice_carries_pcm16_audio(peer: PeerFactory) -> None:
    """bot_voice carries {audio: base64 PCM16, message_id, chunk_index, is_final, sample_rate}, at the session's sample rate."""
    p = peer()
    await p.session(audio_sample_rate=16000)
    await start_websocket_voice(p)
    watch = Stopwatch()
    message_id = (await final_reply(p, "Say hello with your voice.")).payload["message_id"]
    final = await p.wait(
        "bot_voice",
        predicate=lambda e: e.payload.get("is_final") is True and e.payload.get("message_id") == message_id,
        since=watch.start,
    )
    chunks = [e.payload for e in p.seen("bot_voice", since=watch.start) if e.t <= final.t]
    required = {"audio", "message_id", "chunk_index", "is_final", "sample_rate"}
    missing = [sorted(required - set(c)) for c in chunks if not required <= set(c)]
    expect(not missing, expected=f"every bot_voice chunk has {sorted(required)}", actual=missing)
    rates = sorted({c["sample_rate"] for c in chunks})
    expect(rates == [16000], expected="sample_rate 16000, the session's audio_sample_rate", actual=rates)
    try:
        pcm = audio.concat(*(audio.from_bytes(base64.b64decode(c["audio"], validate=True)) for c in chunks))
    except (binascii.Error, ValueError) as exc:
        raise AssertionError(f"Expected: base64 PCM16 audio\nActual:   {exc}") from exc
    rate = 16000
    expect(
        audio.voiced_seconds(pcm, rate) >= 0.3,
        expected="≥ 0.3 s of audible bot voice",
        actual=f"{audio.voiced_seconds(pcm, rate):.2f} s",
    )
    if p.target.mode == "fake":
        expect(
            audio.heard_voice(pcm, rate, 220.0),
            expected="the fake bot's 220 Hz voice",
            actual=f"{audio.dominant_frequency(pcm, rate):.0f} Hz",
        )
