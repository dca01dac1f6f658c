"""EstuaryClient: the facade an app (or a test) uses: connect, voice, text, events."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, overload

from pytest_estuary import audio
from pytest_estuary.client.audio_input import AudioInput, SyntheticAudioInput
from pytest_estuary.client.bot_audio import BotAudio
from pytest_estuary.client.config import AuthStyle, ClientConfig, VoiceTransport
from pytest_estuary.client.emitter import Emitter, HistoryEntry
from pytest_estuary.client.errors import ConfigError, ErrorCode, EstuaryError
from pytest_estuary.client.event_api import TypedEvents
from pytest_estuary.client.events import BotVoice, Disconnected, SessionInfo
from pytest_estuary.client.livekit_voice import LiveKitVoice
from pytest_estuary.client.selection import Transport, load_livekit, select_transport
from pytest_estuary.client.signalling import Signalling
from pytest_estuary.client.teardown import cancel_and_wait, close_input, describe, report_failure
from pytest_estuary.client.voice import VoiceContext, VoiceSession
from pytest_estuary.client.websocket_voice import WebSocketVoice

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:  # TypeVar defaults (PEP 696); typing_extensions comes with aiohttp and pytest-asyncio below 3.13
    from typing_extensions import TypeVar

__all__ = ["EstuaryClient"]

log = logging.getLogger("pytest_estuary.client")


# The audio input's type, so ``client.audio_input.say(...)`` type-checks: SyntheticAudioInput by default.
A = TypeVar("A", bound=AudioInput, default=SyntheticAudioInput)


class EstuaryClient(TypedEvents, Generic[A]):
    """A client of the Estuary SDK protocol that follows the seed page (protocol.md sections 6-8).

    Args:
        server_url: the Estuary server, ``http(s)://`` or ``ws(s)://`` (Socket.IO path ``/socket.io/``,
            namespace ``/sdk``).
        api_key: the API key; it never appears in a repr, a log line or an error message.
        character_id: the character to talk to.
        player_id: this user's id (also the LiveKit identity on the fake server).
        voice_transport: "auto" (LiveKit iff ``livekit.rtc`` is installed, SEL-1), "livekit" (falls back
            to WebSocket with a WARNING when it is not, SEL-2) or "websocket" (never LiveKit, SEL-3).
            Anything else fails ``start_voice()`` with VOICE_NOT_SUPPORTED (SEL-4).
        audio_input: where the "microphone" audio comes from; default a :class:`SyntheticAudioInput`
            (silence until told to ``say``). ``client.audio_input`` has this input's type.
        token_timeout: seconds for the ``livekit_token`` reply (ERR-2: else CONNECTION_TIMEOUT).
        ready_timeout: seconds from ``livekit_join`` to ``livekit_ready`` (ERR-8: else CONNECTION_TIMEOUT).
        connect_timeout: seconds for each connection phase: the socket (TCP connect, WebSocket upgrade,
            Engine.IO open, namespace CONNECT together: CONNECTION_TIMEOUT), the LiveKit room connect and
            the microphone publish (CONNECTION_FAILED, ERR-3), and opening the audio input
            (MICROPHONE_DENIED).
        auth_style: "event" (an ``authenticate`` event after connecting, as the TypeScript SDK) or
            "connect" (auth in the namespace CONNECT, as the Python SDK).
        audio_sample_rate: the session's PCM rate in Hz (WebSocket voice and ``bot_voice`` audio).
        reconnect: reconnect (with backoff, re-authenticating) when the socket drops; never after
            ``session_timeout``.
        session_info_timeout: seconds from the namespace CONNECT to ``session_info`` (CONN-4: 15 s).
        voice_start_timeout: seconds for ``voice_started`` on WebSocket (WS-1: 10 s).
        max_reconnect_attempts: reconnect attempts before ``reconnect_failed``.
        leave_timeout: seconds for each step of ``stop_voice()`` / ``disconnect()``: leaving the room,
            ``voice_stopped``, closing the socket (LK-9: 5 s).
    """

    @overload
    def __init__(
        self: EstuaryClient[SyntheticAudioInput],
        server_url: str,
        api_key: str,
        character_id: str,
        player_id: str,
        *,
        voice_transport: VoiceTransport = "auto",
        token_timeout: float = 10.0,
        ready_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        auth_style: AuthStyle = "event",
        audio_sample_rate: int = 24000,
        reconnect: bool = True,
        session_info_timeout: float = 15.0,
        voice_start_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        leave_timeout: float = 5.0,
        ca_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        socketio_path: str = "/socket.io/",
        audio_input: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        server_url: str,
        api_key: str,
        character_id: str,
        player_id: str,
        *,
        voice_transport: VoiceTransport = "auto",
        token_timeout: float = 10.0,
        ready_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        auth_style: AuthStyle = "event",
        audio_sample_rate: int = 24000,
        reconnect: bool = True,
        session_info_timeout: float = 15.0,
        voice_start_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        leave_timeout: float = 5.0,
        ca_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        socketio_path: str = "/socket.io/",
        audio_input: A,
    ) -> None: ...

    @overload
    def __init__(
        self: EstuaryClient[AudioInput],
        server_url: str,
        api_key: str,
        character_id: str,
        player_id: str,
        *,
        voice_transport: VoiceTransport = "auto",
        token_timeout: float = 10.0,
        ready_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        auth_style: AuthStyle = "event",
        audio_sample_rate: int = 24000,
        reconnect: bool = True,
        session_info_timeout: float = 15.0,
        voice_start_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        leave_timeout: float = 5.0,
        ca_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        socketio_path: str = "/socket.io/",
        audio_input: AudioInput | None,
    ) -> None: ...

    def __init__(
        self,
        server_url: str,
        api_key: str,
        character_id: str,
        player_id: str,
        *,
        voice_transport: VoiceTransport = "auto",
        token_timeout: float = 10.0,
        ready_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        auth_style: AuthStyle = "event",
        audio_sample_rate: int = 24000,
        reconnect: bool = True,
        session_info_timeout: float = 15.0,
        voice_start_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        leave_timeout: float = 5.0,
        ca_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        socketio_path: str = "/socket.io/",
        audio_input: AudioInput | None = None,
    ) -> None:
        self.config = ClientConfig(
            server_url=server_url,
            api_key=api_key,
            character_id=character_id,
            player_id=player_id,
            voice_transport=voice_transport,
            audio_input=audio_input,
            token_timeout=token_timeout,
            ready_timeout=ready_timeout,
            connect_timeout=connect_timeout,
            session_info_timeout=session_info_timeout,
            voice_start_timeout=voice_start_timeout,
            auth_style=auth_style,
            audio_sample_rate=audio_sample_rate,
            reconnect=reconnect,
            max_reconnect_attempts=max_reconnect_attempts,
            leave_timeout=leave_timeout,
            ca_file=ca_file,
            ssl_context=ssl_context,
            socketio_path=socketio_path,
        )
        # A is the type of audio_input, or SyntheticAudioInput when none was given (the overloads above)
        self.audio_input: A = audio_input if audio_input is not None else SyntheticAudioInput()  # type: ignore[assignment]
        self.bot_audio = BotAudio()
        self._emitter = Emitter()
        self._signalling = Signalling(self.config, self._dispatch)
        self._voice: VoiceSession | None = None
        self._voice_lock = asyncio.Lock()
        self._muted = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return (
            f"EstuaryClient({self.config.server_url!r}, player_id={self.config.player_id!r}, {state}, "
            f"transport={self.transport!r}, room={self.room!r})"
        )

    # -- state --------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._signalling.connected

    @property
    def session_info(self) -> SessionInfo | None:
        return self._signalling.session

    @property
    def transport(self) -> Transport | None:
        """The voice transport in use: "livekit", "websocket", or None while voice is off (SEL-6)."""
        return self._voice.transport if self._voice is not None else None

    @property
    def room(self) -> str | None:
        return self._voice.room if self._voice is not None else None

    @property
    def voice_timings(self) -> dict[str, float]:
        """Seconds from start_voice() to each LiveKit handshake step of the current voice
        (token_reply, room_connected, published, ready); empty on WebSocket or with no voice."""
        return dict(getattr(self._voice, "timings", {}))

    @property
    def is_voice_active(self) -> bool:
        return self._voice is not None

    @property
    def is_muted(self) -> bool:
        return self._muted

    @property
    def history(self) -> list[HistoryEntry]:
        """Every app event so far: (monotonic t, event, payload)."""
        return list(self._emitter.history)

    # -- events (on/off/wait_for: TypedEvents) ------------------------------------------------

    def _dispatch(self, event: str, payload: Any) -> None:
        if event == "bot_voice" and isinstance(payload, BotVoice) and payload.audio:
            rate = payload.sample_rate or self.config.audio_sample_rate
            self.bot_audio.append(audio.from_bytes(payload.audio), rate)
        self._emitter.emit(event, payload)
        voice = self._voice
        if voice is not None and event in ("voice_timeout", "disconnected", "session_timeout"):
            reason = payload.reason if isinstance(payload, Disconnected) else event
            self._end_voice_soon(voice, reason)

    def _end_voice_soon(self, voice: VoiceSession, reason: str) -> None:
        """The server released voice (or the socket went): tear down our side, no leave needed."""
        if self._voice is voice:
            self._voice = None
        voice.halt()

        task = asyncio.ensure_future(voice.end(reason))
        self._tasks.add(task)
        task.add_done_callback(self._voice_ended)

    def _voice_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:  # reported here: nobody awaits this task
            report_failure(self._emitter.emit, "ending voice", describe(error))

    # -- session ------------------------------------------------------------------------------

    async def connect(self) -> SessionInfo:
        """Open the session: AUTH_FAILED on auth_error (ERR-6), CONNECTION_* on network trouble."""
        if self._signalling.connected:
            assert self._signalling.session is not None
            return self._signalling.session
        return await self._signalling.connect()

    async def disconnect(self) -> None:
        """Stop voice, close the socket (no reconnect), wait for background work; safe to call twice.

        Each step is bounded by ``leave_timeout``; a step that fails or times out is logged once at
        WARNING and recorded as ``teardown_failed`` in ``history``, and the next step still runs. A
        cancellation of disconnect() still closes everything (each step bounded), then propagates.
        """
        was_connected = self._signalling.connected
        voice, self._voice = self._voice, None
        emit, bound = self._emitter.emit, self.config.leave_timeout
        try:
            if voice is not None:
                try:
                    await (voice.stop() if was_connected else voice.end("client disconnect"))
                except EstuaryError as exc:
                    report_failure(emit, "stopping voice", exc.message)
                except Exception as exc:
                    report_failure(emit, "stopping voice", describe(exc))
        finally:
            try:
                await self._signalling.close()
            finally:
                await self._finish_background(bound)
                await close_input(self.audio_input, emit, bound)
                if was_connected:
                    emit("disconnected", Disconnected("client disconnect"))
                await self._emitter.aclose(bound)

    async def _finish_background(self, bound: float) -> None:
        """Let voice endings started by the server (voice_timeout, room gone) finish, within ``bound``."""
        tasks = set(self._tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=bound)  # (failures are reported by _voice_ended)
        for task in pending:
            report_failure(self._emitter.emit, "ending voice", f"did not finish within {bound:g} s (leave_timeout)")
            await cancel_and_wait(task, bound)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    def _require_connection(self, what: str) -> None:
        if not self._signalling.connected:
            raise EstuaryError(ErrorCode.NOT_CONNECTED, f"{what} needs a connected session: call connect() first")

    # -- voice --------------------------------------------------------------------------------

    async def start_voice(self) -> Transport:
        """Start voice on the selected transport; returns it ("livekit" | "websocket").

        Errors (protocol.md ERR): NOT_CONNECTED, VOICE_ALREADY_ACTIVE, VOICE_NOT_SUPPORTED,
        LIVEKIT_UNAVAILABLE, CONNECTION_TIMEOUT, CONNECTION_FAILED, MICROPHONE_DENIED. After
        any of them nothing is left running and start_voice() may be called again (ERR-7).
        """
        self._require_connection("start_voice()")
        if self._voice is not None or self._voice_lock.locked():
            raise EstuaryError(
                ErrorCode.VOICE_ALREADY_ACTIVE, f"voice is already active ({self.transport or 'starting'})"
            )
        async with self._voice_lock:
            transport = select_transport(self.config.voice_transport)
            ctx = VoiceContext(
                config=self.config,
                signalling=self._signalling,
                emitter=self._emitter,
                audio_input=self.audio_input,
                bot_audio=self.bot_audio,
                is_muted=lambda: self._muted,
                on_ended=lambda voice: self._end_voice_soon(voice, "room ended"),
            )
            voice: VoiceSession
            if transport == "livekit":
                voice = LiveKitVoice(load_livekit(), ctx)
                self.bot_audio.clear(sample_rate=48000)
            else:
                voice = WebSocketVoice(ctx)
                self.bot_audio.clear(sample_rate=self.config.audio_sample_rate)
            await voice.start()
            self._voice = voice
            log.info("voice started over %s (room %s)", transport, voice.room)
            return transport

    async def stop_voice(self) -> None:
        """LIFE-2: leave (livekit_leave / stop_voice), close the room and the input; VOICE_NOT_ACTIVE if off."""
        self._require_connection("stop_voice()")
        voice = self._voice
        if voice is None:
            raise EstuaryError(ErrorCode.VOICE_NOT_ACTIVE, "stop_voice(): voice is not active")
        self._voice = None
        await voice.stop()

    def toggle_mute(self) -> bool:
        """Flip mute; returns the new ``is_muted``. While muted no microphone audio is sent (LIFE-1)."""
        self._muted = not self._muted
        if self._voice is not None:
            self._voice.set_muted(self._muted)
        return self._muted

    # -- text ---------------------------------------------------------------------------------

    async def send_text(self, text: str, text_only: bool = False) -> None:
        """Send ``text {text, textOnly}``; replies arrive as bot_response (and bot_voice)."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("text", "a non-empty string", text)
        if not isinstance(text_only, bool):
            raise ConfigError("text_only", "True or False", text_only)
        self._require_connection("send_text()")
        await self._signalling.emit("text", {"text": text, "textOnly": text_only})

    async def interrupt(self, message_id: str | None = None) -> None:
        """Send ``client_interrupt`` (TEXT-3)."""
        self._require_connection("interrupt()")
        await self._signalling.emit("client_interrupt", {"message_id": message_id} if message_id else None)
