"""WebSocket voice as steps: start (WS-1) and stop (WS-3), and real-time audio streaming."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from conformance.checks import Stopwatch, expect
from conformance.peer import RawPeer, WireEvent
from pytest_estuary import audio
from pytest_estuary.verdicts import step

__all__ = ["CHUNK_SECONDS", "START_BOUND", "start_websocket_voice", "stop_websocket_voice", "stream"]

CHUNK_SECONDS = 0.04
START_BOUND = 10.0  # WS-1: voice_started within 10 s


async def stream(p: RawPeer, pcm: audio.PCM16, sample_rate: int) -> None:
    """Send ``pcm`` as `stream_audio` chunks at real-time pace (a server VAD may rely on it)."""
    step_samples = round(sample_rate * CHUNK_SECONDS)
    for start in range(0, len(pcm), step_samples):
        data = pcm[start : start + step_samples].astype("<i2").tobytes()
        await p.emit("stream_audio", {"audio": base64.b64encode(data).decode("ascii")})
        await asyncio.sleep(CHUNK_SECONDS)


async def start_websocket_voice(p: RawPeer, payload: Any = None) -> WireEvent:
    """`start_voice` → `voice_started` within 10 s (a step of WS-1)."""
    with step("WS-1", "voice_started after start_voice"):
        watch = Stopwatch()
        await p.emit("start_voice", payload)
        got = await p.wait(("voice_started", "voice_error"), timeout=START_BOUND, since=watch.start)
        expect(got.name == "voice_started", expected="voice_started {}", actual=got.describe())
    return got


async def stop_websocket_voice(p: RawPeer, payload: Any = None) -> WireEvent:
    """`stop_voice` → `voice_stopped` (a step of WS-3)."""
    with step("WS-3", "voice_stopped after stop_voice"):
        watch = Stopwatch()
        await p.emit("stop_voice", payload)
        return await p.wait("voice_stopped", since=watch.start)
