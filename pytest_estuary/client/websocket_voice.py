"""WebSocket voice (protocol.md section 5): start_voice/voice_started, stream_audio, stop_voice/voice_stopped.

The bot's ``bot_voice`` audio is recorded by the client for both transports; this module only
sends the microphone.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from pytest_estuary import audio
from pytest_estuary.client.errors import EstuaryError
from pytest_estuary.client.selection import Transport
from pytest_estuary.client.teardown import cancel_and_wait, close_input, describe, report_failure
from pytest_estuary.client.voice import VoiceContext, await_reply, open_input, pump

__all__ = ["FRAME_MS", "WebSocketVoice"]

log = logging.getLogger("pytest_estuary.client")
FRAME_MS = 40  # within the 20-100 ms chunks the SDKs send: 25 events a second


class WebSocketVoice:
    transport: Transport = "websocket"
    room: str | None = None

    def __init__(self, ctx: VoiceContext) -> None:
        self.ctx = ctx
        self._pump: asyncio.Task[None] | None = None
        self._started = False
        self._torn_down = False

    async def start(self) -> None:
        """Open the input (≤ connect_timeout), start_voice → voice_started (≤ voice_start_timeout)."""
        cfg, emitter = self.ctx.config, self.ctx.emitter
        try:
            await open_input(self.ctx, cfg.audio_sample_rate)
            waiter = emitter.waiter({"voice_started", "voice_error", "disconnected"})
            try:
                self._started = True
                await self.ctx.signalling.emit("start_voice")
            except BaseException:
                waiter.cancel()
                raise
            await await_reply(
                waiter,
                awaited="voice_started",
                timeout=cfg.voice_start_timeout,
                phase="start_voice(): voice_started",
                setting="voice_start_timeout",
                failure_events={
                    "voice_error": lambda p: f"the server refused WebSocket voice (voice_error): {p.error}",
                    "disconnected": lambda p: f"the Socket.IO connection closed ({p.reason})",
                },
            )
        except BaseException:
            # tell the server (it may have opened STT), but don't wait: the start error matters
            await self._teardown(send_stop=self._started, wait_ack=False)
            raise
        self._pump = asyncio.ensure_future(
            pump(self.ctx.audio_input, cfg.audio_sample_rate, FRAME_MS, self._send, self.ctx.is_muted)
        )

    async def _send(self, frame: audio.PCM16) -> None:
        if not self.ctx.signalling.connected:
            return
        data = base64.b64encode(frame.astype("<i2").tobytes()).decode("ascii")
        await self.ctx.signalling.emit("stream_audio", {"audio": data})

    def set_muted(self, muted: bool) -> None:
        return None  # the pump stops sending while muted

    async def stop(self) -> None:
        """LIFE-2: stop streaming, stop_voice, wait for voice_stopped (bounded), close the input."""
        await self._teardown(send_stop=True)

    def halt(self) -> None:
        """Stop sending microphone audio at once (the server has already released voice)."""
        if self._pump is not None:
            self._pump.cancel()

    async def end(self, reason: str) -> None:
        log.info("WebSocket voice ended: %s", reason)
        await self._teardown(send_stop=False)

    async def _teardown(self, *, send_stop: bool, wait_ack: bool = True) -> None:
        """Stop the pump, send stop_voice (and wait for voice_stopped ≤ leave_timeout), close the input.

        A voice_stopped that does not come is CONNECTION_TIMEOUT, raised after everything local is closed.
        """
        if self._torn_down:
            return
        self._torn_down = True
        cfg, emit = self.ctx.config, self.ctx.emitter.emit
        try:
            error = await cancel_and_wait(self._pump, cfg.leave_timeout)
            if error is not None:
                report_failure(emit, "stopping the microphone pump", describe(error))
            if not (send_stop and self.ctx.signalling.connected):
                return
            if not wait_ack:
                try:
                    await self.ctx.signalling.emit("stop_voice")
                except EstuaryError as exc:
                    report_failure(emit, "sending stop_voice", exc.message)
                return
            waiter = self.ctx.emitter.waiter({"voice_stopped", "disconnected"})
            try:
                await self.ctx.signalling.emit("stop_voice")
            except BaseException:
                waiter.cancel()
                raise
            await await_reply(
                waiter,
                awaited="voice_stopped",
                timeout=cfg.leave_timeout,
                phase="stop_voice(): voice_stopped",
                setting="leave_timeout",
                failure_events={},
            )
        finally:
            await close_input(self.ctx.audio_input, self.ctx.emitter.emit, self.ctx.config.leave_timeout)
