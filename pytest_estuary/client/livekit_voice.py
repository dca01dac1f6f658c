"""LiveKit voice: the handshake of protocol.md section 4, the microphone track, the bot's audio.

start(): open the input (≤ connect_timeout) → livekit_token (null) → token reply (≤ token_timeout,
else CONNECTION_TIMEOUT) → Room.connect (≤ connect_timeout, failures CONNECTION_FAILED with the
server's reason) → publish "microphone" (≤ connect_timeout) → livekit_join {room} → livekit_ready
(≤ ready_timeout, else CONNECTION_TIMEOUT; livekit_error or a room mismatch → CONNECTION_FAILED) →
app event livekit_connected(room). Any failure, or a cancellation, tears everything down before it
propagates (ERR-7). stop(): livekit_leave, leave the room (≤ leave_timeout); a step that fails is
reported (teardown_failed), not raised.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

import aiohttp
import numpy as np

from pytest_estuary import audio
from pytest_estuary.client.errors import ErrorCode, EstuaryError
from pytest_estuary.client.events import LiveKitDisconnected, LiveKitReady, LiveKitToken
from pytest_estuary.client.rtc_connect import ConnectTimeout, connect_within
from pytest_estuary.client.selection import Transport
from pytest_estuary.client.teardown import cancel_and_wait, close_input, describe, redact, report_failure
from pytest_estuary.client.voice import VoiceContext, await_reply, open_input, protocol_error_about, pump
from pytest_estuary.tls import trust_in_process, verify_once

__all__ = ["MIC_TRACK_NAME", "SAMPLE_RATE", "LiveKitVoice"]

log = logging.getLogger("pytest_estuary.client")
SAMPLE_RATE = 48000
FRAME_MS = 10  # what WebRTC's audio device uses: the least added latency
SOURCE_QUEUE_MS = 100  # a short queue: the pump paces in real time, a long one only adds latency
MIC_TRACK_NAME = "microphone"
DIAGNOSE_TIMEOUT = 1.0  # on top of connect_timeout, only when the connect failed


def _closed_socket(payload: Any) -> str:
    return f"the Socket.IO connection closed ({getattr(payload, 'reason', payload)})"


class _RedactJwt(logging.Filter):
    """livekit.rtc's native layer logs refused tokens in full; keep JWTs out of every log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "eyJ" in message:
            record.msg, record.args = redact(message), None
        return True


_REDACTOR = _RedactJwt()


def install_log_redaction() -> None:
    logger = logging.getLogger("livekit")
    if _REDACTOR not in logger.filters:
        logger.addFilter(_REDACTOR)


class LiveKitVoice:
    """One LiveKit voice session (one room); ``rtc`` is the loaded ``livekit.rtc`` module."""

    transport: Transport = "livekit"

    def __init__(self, rtc: Any, ctx: VoiceContext) -> None:
        self.rtc = rtc
        self.ctx = ctx
        install_log_redaction()
        self.room: str | None = None
        self.connected = False  # livekit_connected was emitted
        self._announced = False  # livekit_disconnected was emitted
        self._requested = False  # livekit_token was sent: the server may hold state for us
        self._room: Any = None
        self._source: Any = None
        self._track: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._torn_down = False
        self._give_up: asyncio.TimerHandle | None = None
        self.timings: dict[str, float] = {}  # seconds since start() for each handshake step

    def _mark(self, step: str) -> None:
        self.timings[step] = time.monotonic() - self._t0

    # -- start --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._t0 = time.monotonic()
        try:
            await open_input(self.ctx, SAMPLE_RATE)
            token = await self._request_token()
            self._mark("token_reply")
            await self._connect(token)
            self._mark("room_connected")
            await self._publish()
            self._mark("published")
            await self._join(token.room)
            self._mark("ready")
        except BaseException:
            await self._teardown(send_leave=self._requested)
            raise
        self.connected = True
        self.ctx.emitter.emit("livekit_connected", token.room)  # the seed page's livekit_connected(room)

    async def _request_token(self) -> LiveKitToken:
        cfg, emitter = self.ctx.config, self.ctx.emitter
        waiter = emitter.waiter(
            {"livekit_token", "livekit_error", "protocol_error", "disconnected"}, protocol_error_about("livekit_token")
        )
        try:
            self._requested = True
            await self.ctx.signalling.emit("livekit_token")
        except BaseException:
            waiter.cancel()
            raise
        token: LiveKitToken = await await_reply(
            waiter,
            awaited="the livekit_token reply",
            timeout=cfg.token_timeout,
            phase="start_voice(): livekit_token reply",
            setting="token_timeout",
            failure_events={
                "livekit_error": lambda p: f"the server refused LiveKit voice (livekit_error): {p.error}",
                "protocol_error": lambda p: f"unusable livekit_token reply: {p.message}",
                "disconnected": _closed_socket,
            },
        )
        if not token.url.startswith(("ws://", "wss://")):
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"livekit_token: field 'url': expected a ws:// or wss:// URL, got {token.url!r}",
            )
        return token

    async def _connect(self, token: LiveKitToken) -> None:
        rtc, cfg = self.rtc, self.ctx.config
        room = rtc.Room()
        room.on("disconnected", self._on_room_disconnected)
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("reconnecting", self._on_reconnecting)
        room.on("reconnected", self._on_reconnected)
        self._room = room
        options = rtc.RoomOptions(auto_subscribe=True)
        await self._check_tls(token)
        try:
            await connect_within(room, token.url, token.token, cfg.connect_timeout, options)
        except asyncio.CancelledError:  # our caller gave up: the room must not connect behind its back
            self._room = None
            raise
        except ConnectTimeout:
            self._room = None
            why = await diagnose(token.url, token.token, context=self._tls_for(token.url))
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"start_voice(): room connect: the LiveKit server at {token.url} did not let us into room "
                f"{token.room!r} within "
                f"{cfg.connect_timeout:g} s (connect_timeout)" + (f"; the server says: {why}" if why else ""),
            ) from None
        except Exception as error:
            reason = redact(getattr(error, "message", None) or str(error) or type(error).__name__, token.token)
            why = await diagnose(token.url, token.token, context=self._tls_for(token.url))
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"start_voice(): room connect: could not connect to LiveKit room {token.room!r} at {token.url}: "
                f"{reason}"
                + (f"; the server says: {why}" if why and why not in reason else ""),
            ) from error
        if room.name != token.room:  # ERR-9: the token admitted us elsewhere
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"room mismatch: livekit_token announced room {token.room!r} but the token joined room {room.name!r}",
            )

    async def _check_tls(self, token: LiveKitToken) -> None:
        """A wss:// room URL: trust the configured CA file, and say at once what is wrong with the
        server's certificate (livekit.rtc would retry for half a minute and report a bare error)."""
        cfg = self.ctx.config
        if cfg.ca_file is not None:
            trust_in_process(cfg.ca_file)
        if not token.url.startswith("wss://"):
            return
        problem = await verify_once(
            token.url, cfg.tls(), what="the LiveKit server", timeout=cfg.connect_timeout, remedy="ca_file="
        )
        if problem is not None:
            raise EstuaryError(ErrorCode.CONNECTION_FAILED, f"start_voice(): room connect: {problem}")

    def _tls_for(self, url: str) -> ssl.SSLContext | bool:
        """The client's context for a wss:// URL (it trusts ca_file); aiohttp's default otherwise."""
        return self.ctx.config.tls() if url.startswith("wss://") else True

    async def _publish(self) -> None:
        rtc = self.rtc
        self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=SOURCE_QUEUE_MS)
        self._track = rtc.LocalAudioTrack.create_audio_track(MIC_TRACK_NAME, self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        try:
            await asyncio.wait_for(
                self._room.local_participant.publish_track(self._track, options), self.ctx.config.connect_timeout
            )
        except TimeoutError as exc:
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"start_voice(): publish: the microphone track was not published within "
                f"{self.ctx.config.connect_timeout:g} s (connect_timeout)",
            ) from exc
        except Exception as exc:
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED, f"start_voice(): publish: could not publish the microphone track: {exc}"
            ) from exc
        if self.ctx.is_muted():
            self._track.mute()
        self._pump = asyncio.ensure_future(
            pump(self.ctx.audio_input, SAMPLE_RATE, FRAME_MS, self._send_frame, self.ctx.is_muted)
        )

    async def _send_frame(self, frame: audio.PCM16) -> None:
        source = self._source
        if source is not None:
            await source.capture_frame(self.rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, len(frame)))

    async def _join(self, room: str) -> None:
        cfg, emitter = self.ctx.config, self.ctx.emitter
        waiter = emitter.waiter(
            {"livekit_ready", "livekit_error", "protocol_error", "disconnected"}, protocol_error_about("livekit_ready")
        )
        try:
            await self.ctx.signalling.emit("livekit_join", {"room": room})
        except BaseException:
            waiter.cancel()
            raise
        ready: LiveKitReady = await await_reply(
            waiter,
            awaited=f"livekit_ready for room {room!r}",
            timeout=cfg.ready_timeout,
            phase="start_voice(): livekit_ready",
            setting="ready_timeout",
            failure_events={
                "livekit_error": lambda p: f"the server could not set up room {room!r} (livekit_error): {p.error}",
                "protocol_error": lambda p: f"unusable livekit_ready: {p.message}",
                "disconnected": _closed_socket,
            },
        )
        if ready.room != room:
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"room mismatch: joined room {room!r} but livekit_ready confirmed room {ready.room!r}",
            )
        if self._room is None or not self._room.isconnected():
            raise EstuaryError(ErrorCode.CONNECTION_FAILED, f"the LiveKit room {room!r} ended during the handshake")
        self.room = room

    # -- running ------------------------------------------------------------------------------

    def set_muted(self, muted: bool) -> None:
        track = self._track
        if track is not None:
            track.mute() if muted else track.unmute()

    def _on_track_subscribed(self, track: Any, _publication: Any, participant: Any) -> None:
        if track.kind != self.rtc.TrackKind.KIND_AUDIO:
            return
        task = asyncio.ensure_future(self._record(track, participant.identity))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _record(self, track: Any, identity: str) -> None:
        stream = self.rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        log.debug("recording audio of %s", identity)
        try:
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                self.ctx.bot_audio.append(pcm, SAMPLE_RATE)
        finally:
            await stream.aclose()

    def _on_reconnecting(self) -> None:
        """The SFU connection broke; livekit retries for a long time, we give it connect_timeout."""
        if self.connected and self._give_up is None:
            self._give_up = asyncio.get_running_loop().call_later(
                self.ctx.config.connect_timeout, self._reconnect_failed
            )

    def _on_reconnected(self) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None

    def _reconnect_failed(self) -> None:
        self._give_up = None
        log.warning("the LiveKit room %s did not come back within %.1f s; leaving it", self.room,
                    self.ctx.config.connect_timeout)
        self._on_room_disconnected(f"SFU unreachable for {self.ctx.config.connect_timeout:g} s")

    def _on_room_disconnected(self, reason: Any = None) -> None:
        if not self.connected or self._announced:
            return
        self._announced = True  # LIFE-3: exactly once per connected room
        try:
            name = self.rtc.DisconnectReason.Name(reason)
        except Exception:
            name = str(reason)
        self.ctx.emitter.emit("livekit_disconnected", LiveKitDisconnected(self.room or "", name))
        if not self._torn_down:
            self.ctx.on_ended(self)  # the room ended on its own: the client tears the rest down

    # -- stop ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        """LIFE-2: livekit_leave, leave the room, close the input."""
        await self._teardown(send_leave=True)

    def halt(self) -> None:
        """Stop sending microphone audio at once (the server has already released voice)."""
        if self._pump is not None:
            self._pump.cancel()

    async def end(self, reason: str) -> None:
        """The server already released voice (voice_timeout, socket gone): leave without livekit_leave."""
        log.info("LiveKit voice ended: %s", reason)
        await self._teardown(send_leave=False)

    async def _teardown(self, *, send_leave: bool) -> None:
        """Every step runs, each bounded by leave_timeout; a failed step is reported, not raised."""
        if self._torn_down:
            return
        self._torn_down = True
        bound, emit = self.ctx.config.leave_timeout, self.ctx.emitter.emit
        try:
            error = await cancel_and_wait(self._pump, bound)
            if error is not None:
                report_failure(emit, "stopping the microphone pump", describe(error))
            self._on_reconnected()  # drop a pending give-up timer
            if send_leave and not self.ctx.signalling.connected:
                report_failure(emit, "sending livekit_leave",
                               "the socket is closed; the server must drop the room on its own (LK-9)")
            elif send_leave:
                try:
                    await self.ctx.signalling.emit("livekit_leave")
                except EstuaryError as exc:
                    report_failure(emit, "sending livekit_leave", exc.message)
            room = self._room
            if room is not None:
                await self._leave(room, bound)
            for task in list(self._readers):
                error = await cancel_and_wait(task, bound)
                if error is not None:
                    report_failure(emit, "stopping the bot audio reader", describe(error))
            if self._source is not None:
                try:
                    async with asyncio.timeout(bound):
                        await self._source.aclose()
                except Exception as exc:
                    report_failure(emit, "closing the microphone source", describe(exc))
        finally:
            self._room = self._source = self._track = None
            await close_input(self.ctx.audio_input, self.ctx.emitter.emit, self.ctx.config.leave_timeout)

    async def _leave(self, room: Any, bound: float) -> None:
        try:
            async with asyncio.timeout(bound):
                await room.disconnect()
        except TimeoutError:
            report_failure(
                self.ctx.emitter.emit, "leaving the LiveKit room",
                f"room {self.room or '?'} did not close within {bound:g} s (leave_timeout)",
            )
        except Exception as exc:
            report_failure(self.ctx.emitter.emit, "leaving the LiveKit room", describe(exc))
        self._on_room_disconnected("CLIENT_INITIATED")  # no-op if the room already announced it
        for event, handler in (("disconnected", self._on_room_disconnected),
                               ("track_subscribed", self._on_track_subscribed),
                               ("reconnecting", self._on_reconnecting), ("reconnected", self._on_reconnected)):
            room.off(event, handler)


async def diagnose(
    url: str, token: str, timeout: float = DIAGNOSE_TIMEOUT, *, context: ssl.SSLContext | bool = True
) -> str | None:
    """Ask the LiveKit server why it refuses ``token`` (its /rtc/validate endpoint, as the JS SDK does).

    The native SDK retries a refused signal connection before it reports, so its own error can
    come after our bound; this gives the server's reason ("401 Unauthorized - invalid token…") at once.
    """
    base = "http" + url[2:] if url.startswith("ws") else url
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout), connector=aiohttp.TCPConnector(ssl=context)
            ) as http,
            http.get(base.rstrip("/") + "/rtc/validate", params={"access_token": token}) as reply,
        ):
            if reply.status == 200:
                return None
            body = redact(" ".join((await reply.text()).split()), token)[:200]
            return f"{reply.status} {reply.reason} - {body}"
    except Exception as exc:
        return redact(f"{type(exc).__name__}: {exc}", token) if str(exc) else type(exc).__name__
