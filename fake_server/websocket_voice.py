"""WebSocket voice (protocol.md section 5): PCM16 over Socket.IO, the same STT and bot."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import numpy as np

from fake_server.engine import Engine
from fake_server.redact import quote
from fake_server.sessions import Session
from fake_server.stt import UtteranceDetector

__all__ = ["WebSocketVoice"]

IN_FLIGHT_GRACE = 2.0  # seconds after a server-side release in which late audio is dropped quietly
MAX_AUDIO_BYTES = 1_000_000  # about 20 s at 24 kHz: far more than one chunk should carry
TURN_MODES = ("push_to_talk", "server_vad", "continuous")


class WebSocketVoice:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def on_start(self, session: Session, payload: Any) -> None:
        if payload is not None and not (
            isinstance(payload, dict) and payload.get("turn_mode", "server_vad") in TURN_MODES
        ):
            await self.engine.emit(
                session, "voice_error", {"error": f"start_voice: turn_mode must be one of {TURN_MODES}"}
            )
            return
        if session.voice == "livekit":
            await self.engine.release_voice(session)
        session.detector = UtteranceDetector(session.audio_sample_rate)  # "STT open" before the ack (WS-1)
        session.voice = "websocket"
        session.touch()
        await self.engine.emit(session, "voice_started", {})

    async def on_audio(self, session: Session, payload: Any) -> None:
        engine = self.engine
        if not isinstance(payload, dict) or not isinstance(payload.get("audio"), str):
            engine.violation(session, "WS-2", "stream_audio {audio: base64 string}", quote(payload, 80))
            await engine.error(session, "stream_audio: field 'audio' must be a base64 string of PCM16 audio")
            return
        text = payload["audio"]
        if len(text) > MAX_AUDIO_BYTES * 4 // 3 + 4:
            await engine.error(session, f"stream_audio: field 'audio' is larger than {MAX_AUDIO_BYTES} bytes")
            return
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            engine.violation(session, "WS-2", "stream_audio.audio valid base64", quote(text, 40))
            await engine.error(session, "stream_audio: field 'audio' is not valid base64")
            return
        if len(data) % 2:
            engine.violation(session, "WS-2", "an even number of PCM16 bytes", f"{len(data)} bytes")
            await engine.error(session, f"stream_audio: field 'audio' has {len(data)} bytes; PCM16 needs an even count")
            return
        if session.detector is None:
            if time.monotonic() - session.voice_released_at < IN_FLIGHT_GRACE:
                return  # sent before the client heard that voice was released: not its fault
            engine.violation(session, "WS-2", "start_voice before stream_audio", "stream_audio with no voice started")
            await engine.error(session, "stream_audio: voice is not started (send start_voice first)")
            return
        session.touch()
        if engine.bad(session).bot_deaf:
            return
        for heard in session.detector.feed(np.frombuffer(data, dtype="<i2").astype(np.int16)):
            await engine.heard(session, heard)

    async def on_stop(self, session: Session, _payload: Any) -> None:
        await self.engine.release_voice(session)  # STT closed before the ack (WS-3)
        await self.engine.emit(session, "voice_stopped", {})
