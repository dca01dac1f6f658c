"""The client's typed event surface: ``on``/``off``/``wait_for`` checked against each event's payload type.

Like livekit-rtc's ``Room.on``, event names are ``Literal``s, so a type checker knows what a callback
receives and what ``wait_for`` returns::

    client.on("stt_response", lambda r: print(r.text))      # r: SttResponse
    reply = await client.wait_for("bot_response")           # reply: BotResponse

A callback may also take no argument at all (the seed page's ``livekit_disconnected()``), and may be
sync or async. The table of events and payloads is :data:`EVENT_PAYLOADS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

from pytest_estuary.client.emitter import Emitter
from pytest_estuary.client.errors import EstuaryError
from pytest_estuary.client.events import (
    AuthError,
    BotResponse,
    BotVoice,
    Connected,
    Disconnected,
    Interrupt,
    LiveKitDisconnected,
    LiveKitError,
    LiveKitReady,
    LiveKitToken,
    PayloadError,
    ServerError,
    SessionInfo,
    SessionTimeout,
    SttResponse,
    VoiceError,
    VoiceStarted,
    VoiceStopped,
    VoiceTimeout,
)
from pytest_estuary.client.teardown import TeardownFailure

__all__ = ["EVENT_PAYLOADS", "EventName", "TypedEvents"]

EventName = Literal[
    "connected",
    "disconnected",
    "reconnecting",
    "reconnect_failed",
    "session_info",
    "auth_error",
    "error",
    "stt_response",
    "bot_response",
    "bot_voice",
    "interrupt",
    "session_timeout",
    "voice_timeout",
    "voice_started",
    "voice_stopped",
    "voice_error",
    "livekit_token",
    "livekit_ready",
    "livekit_error",
    "livekit_connected",
    "livekit_disconnected",
    "protocol_error",
    "teardown_failed",
]

# event name -> (payload type as written, when it comes); the README's event table
EVENT_PAYLOADS: dict[str, tuple[str, str]] = {
    "connected": ("Connected", "the session is open (also after an automatic reconnect)"),
    "disconnected": ("Disconnected", "the socket is gone; ``will_reconnect`` says whether the client tries again"),
    "reconnecting": ("int", "reconnect attempt number (1-based) is starting"),
    "reconnect_failed": ("EstuaryError | None", "every reconnect attempt failed (the last error)"),
    "session_info": ("SessionInfo", "CONN-4"),
    "auth_error": ("AuthError", "CONN-5, after connect() (during connect() it is AUTH_FAILED)"),
    "error": ("ServerError", "``error {message}`` from the server"),
    "stt_response": ("SttResponse", "a transcript of the microphone (interim, then final)"),
    "bot_response": ("BotResponse", "a chunk of the bot's text reply"),
    "bot_voice": ("BotVoice", "bot audio (WebSocket) or its metadata (LiveKit)"),
    "interrupt": ("Interrupt", "TEXT-3"),
    "session_timeout": ("SessionTimeout", "CONN-7: the session ends, no reconnect"),
    "voice_timeout": ("VoiceTimeout", "CONN-7: voice released, text goes on"),
    "voice_started": ("VoiceStarted", "WS-1"),
    "voice_stopped": ("VoiceStopped", "WS-3"),
    "voice_error": ("VoiceError", "WS-1"),
    "livekit_token": ("LiveKitToken", "LK step 2"),
    "livekit_ready": ("LiveKitReady", "LK step 6"),
    "livekit_error": ("LiveKitError", "LK-5"),
    "livekit_connected": ("str", "the seed page's livekitConnected(room): the room name"),
    "livekit_disconnected": ("LiveKitDisconnected", "LIFE-3: once per connected room"),
    "protocol_error": ("PayloadError", "a server payload or event name that breaks protocol.md (refused)"),
    "teardown_failed": ("TeardownFailure", "a step of stop_voice()/disconnect() failed (logged at WARNING too)"),
}


class TypedEvents:
    """``on``/``off``/``wait_for`` for :class:`EstuaryClient`, typed per event (the overloads below)."""

    _emitter: Emitter

    @overload
    def on(self, event: Literal["connected"], callback: Callable[[Connected], object]) -> None: ...
    @overload
    def on(self, event: Literal["disconnected"], callback: Callable[[Disconnected], object]) -> None: ...
    @overload
    def on(self, event: Literal["reconnecting"], callback: Callable[[int], object]) -> None: ...
    @overload
    def on(self, event: Literal["reconnect_failed"], callback: Callable[[EstuaryError | None], object]) -> None: ...
    @overload
    def on(self, event: Literal["session_info"], callback: Callable[[SessionInfo], object]) -> None: ...
    @overload
    def on(self, event: Literal["auth_error"], callback: Callable[[AuthError], object]) -> None: ...
    @overload
    def on(self, event: Literal["error"], callback: Callable[[ServerError], object]) -> None: ...
    @overload
    def on(self, event: Literal["stt_response"], callback: Callable[[SttResponse], object]) -> None: ...
    @overload
    def on(self, event: Literal["bot_response"], callback: Callable[[BotResponse], object]) -> None: ...
    @overload
    def on(self, event: Literal["bot_voice"], callback: Callable[[BotVoice], object]) -> None: ...
    @overload
    def on(self, event: Literal["interrupt"], callback: Callable[[Interrupt], object]) -> None: ...
    @overload
    def on(self, event: Literal["session_timeout"], callback: Callable[[SessionTimeout], object]) -> None: ...
    @overload
    def on(self, event: Literal["voice_timeout"], callback: Callable[[VoiceTimeout], object]) -> None: ...
    @overload
    def on(self, event: Literal["voice_started"], callback: Callable[[VoiceStarted], object]) -> None: ...
    @overload
    def on(self, event: Literal["voice_stopped"], callback: Callable[[VoiceStopped], object]) -> None: ...
    @overload
    def on(self, event: Literal["voice_error"], callback: Callable[[VoiceError], object]) -> None: ...
    @overload
    def on(self, event: Literal["livekit_token"], callback: Callable[[LiveKitToken], object]) -> None: ...
    @overload
    def on(self, event: Literal["livekit_ready"], callback: Callable[[LiveKitReady], object]) -> None: ...
    @overload
    def on(self, event: Literal["livekit_error"], callback: Callable[[LiveKitError], object]) -> None: ...
    @overload
    def on(self, event: Literal["livekit_connected"], callback: Callable[[str], object]) -> None: ...
    @overload
    def on(self, event: Literal["livekit_disconnected"], callback: Callable[[LiveKitDisconnected], object]) -> None: ...
    @overload
    def on(self, event: Literal["protocol_error"], callback: Callable[[PayloadError], object]) -> None: ...
    @overload
    def on(self, event: Literal["teardown_failed"], callback: Callable[[TeardownFailure], object]) -> None: ...
    @overload
    def on(self, event: EventName, callback: Callable[[], object]) -> None: ...

    def on(self, event: EventName, callback: Callable[..., object]) -> None:
        """Call ``callback(payload)`` (or ``callback()``), sync or async, on each ``event``."""
        self._emitter.on(event, callback)

    def off(self, event: EventName, callback: Callable[..., object]) -> None:
        """Stop calling ``callback`` on ``event`` (no error if it was not registered)."""
        self._emitter.off(event, callback)

    @overload
    async def wait_for(
        self,
        event: Literal["connected"],
        *,
        timeout: float = ...,
        predicate: Callable[[Connected], object] | None = ...,
        include_past: bool = ...,
    ) -> Connected: ...
    @overload
    async def wait_for(
        self,
        event: Literal["disconnected"],
        *,
        timeout: float = ...,
        predicate: Callable[[Disconnected], object] | None = ...,
        include_past: bool = ...,
    ) -> Disconnected: ...
    @overload
    async def wait_for(
        self,
        event: Literal["reconnecting"],
        *,
        timeout: float = ...,
        predicate: Callable[[int], object] | None = ...,
        include_past: bool = ...,
    ) -> int: ...
    @overload
    async def wait_for(
        self,
        event: Literal["reconnect_failed"],
        *,
        timeout: float = ...,
        predicate: Callable[[EstuaryError | None], object] | None = ...,
        include_past: bool = ...,
    ) -> EstuaryError | None: ...
    @overload
    async def wait_for(
        self,
        event: Literal["session_info"],
        *,
        timeout: float = ...,
        predicate: Callable[[SessionInfo], object] | None = ...,
        include_past: bool = ...,
    ) -> SessionInfo: ...
    @overload
    async def wait_for(
        self,
        event: Literal["auth_error"],
        *,
        timeout: float = ...,
        predicate: Callable[[AuthError], object] | None = ...,
        include_past: bool = ...,
    ) -> AuthError: ...
    @overload
    async def wait_for(
        self,
        event: Literal["error"],
        *,
        timeout: float = ...,
        predicate: Callable[[ServerError], object] | None = ...,
        include_past: bool = ...,
    ) -> ServerError: ...
    @overload
    async def wait_for(
        self,
        event: Literal["stt_response"],
        *,
        timeout: float = ...,
        predicate: Callable[[SttResponse], object] | None = ...,
        include_past: bool = ...,
    ) -> SttResponse: ...
    @overload
    async def wait_for(
        self,
        event: Literal["bot_response"],
        *,
        timeout: float = ...,
        predicate: Callable[[BotResponse], object] | None = ...,
        include_past: bool = ...,
    ) -> BotResponse: ...
    @overload
    async def wait_for(
        self,
        event: Literal["bot_voice"],
        *,
        timeout: float = ...,
        predicate: Callable[[BotVoice], object] | None = ...,
        include_past: bool = ...,
    ) -> BotVoice: ...
    @overload
    async def wait_for(
        self,
        event: Literal["interrupt"],
        *,
        timeout: float = ...,
        predicate: Callable[[Interrupt], object] | None = ...,
        include_past: bool = ...,
    ) -> Interrupt: ...
    @overload
    async def wait_for(
        self,
        event: Literal["session_timeout"],
        *,
        timeout: float = ...,
        predicate: Callable[[SessionTimeout], object] | None = ...,
        include_past: bool = ...,
    ) -> SessionTimeout: ...
    @overload
    async def wait_for(
        self,
        event: Literal["voice_timeout"],
        *,
        timeout: float = ...,
        predicate: Callable[[VoiceTimeout], object] | None = ...,
        include_past: bool = ...,
    ) -> VoiceTimeout: ...
    @overload
    async def wait_for(
        self,
        event: Literal["voice_started"],
        *,
        timeout: float = ...,
        predicate: Callable[[VoiceStarted], object] | None = ...,
        include_past: bool = ...,
    ) -> VoiceStarted: ...
    @overload
    async def wait_for(
        self,
        event: Literal["voice_stopped"],
        *,
        timeout: float = ...,
        predicate: Callable[[VoiceStopped], object] | None = ...,
        include_past: bool = ...,
    ) -> VoiceStopped: ...
    @overload
    async def wait_for(
        self,
        event: Literal["voice_error"],
        *,
        timeout: float = ...,
        predicate: Callable[[VoiceError], object] | None = ...,
        include_past: bool = ...,
    ) -> VoiceError: ...
    @overload
    async def wait_for(
        self,
        event: Literal["livekit_token"],
        *,
        timeout: float = ...,
        predicate: Callable[[LiveKitToken], object] | None = ...,
        include_past: bool = ...,
    ) -> LiveKitToken: ...
    @overload
    async def wait_for(
        self,
        event: Literal["livekit_ready"],
        *,
        timeout: float = ...,
        predicate: Callable[[LiveKitReady], object] | None = ...,
        include_past: bool = ...,
    ) -> LiveKitReady: ...
    @overload
    async def wait_for(
        self,
        event: Literal["livekit_error"],
        *,
        timeout: float = ...,
        predicate: Callable[[LiveKitError], object] | None = ...,
        include_past: bool = ...,
    ) -> LiveKitError: ...
    @overload
    async def wait_for(
        self,
        event: Literal["livekit_connected"],
        *,
        timeout: float = ...,
        predicate: Callable[[str], object] | None = ...,
        include_past: bool = ...,
    ) -> str: ...
    @overload
    async def wait_for(
        self,
        event: Literal["livekit_disconnected"],
        *,
        timeout: float = ...,
        predicate: Callable[[LiveKitDisconnected], object] | None = ...,
        include_past: bool = ...,
    ) -> LiveKitDisconnected: ...
    @overload
    async def wait_for(
        self,
        event: Literal["protocol_error"],
        *,
        timeout: float = ...,
        predicate: Callable[[PayloadError], object] | None = ...,
        include_past: bool = ...,
    ) -> PayloadError: ...
    @overload
    async def wait_for(
        self,
        event: Literal["teardown_failed"],
        *,
        timeout: float = ...,
        predicate: Callable[[TeardownFailure], object] | None = ...,
        include_past: bool = ...,
    ) -> TeardownFailure: ...

    async def wait_for(
        self,
        event: EventName,
        *,
        timeout: float = 5.0,
        predicate: Callable[[Any], object] | None = None,
        include_past: bool = False,
    ) -> Any:
        """The payload of the next ``event`` (matching ``predicate``), or with ``include_past`` of the
        first past one; EventTimeout (code EVENT_TIMEOUT) names what came instead."""
        return await self._emitter.wait_for(event, timeout=timeout, predicate=predicate, include_past=include_past)
