"""Typed payloads: every server→client event parsed from the wire, with clear errors.

``parse(name, raw)`` turns a wire payload into its dataclass; a payload that breaks
protocol.md raises :class:`PayloadError` naming the event, the field, what was expected and
what came. The app-level events the client itself makes (``connected``, ``livekit_connected``…)
have dataclasses here too, so every callback receives one typed object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_estuary.client.errors import ErrorCode, EstuaryError

__all__ = [
    "APP_EVENTS",
    "CLIENT_EVENTS",
    "AuthError",
    "BotResponse",
    "BotVoice",
    "Connected",
    "Disconnected",
    "Interrupt",
    "LiveKitDisconnected",
    "LiveKitError",
    "LiveKitReady",
    "LiveKitToken",
    "PayloadError",
    "ServerError",
    "SessionInfo",
    "SessionTimeout",
    "SttResponse",
    "VoiceError",
    "VoiceStarted",
    "VoiceStopped",
    "VoiceTimeout",
    "parse",
]

T = TypeVar("T")


class PayloadError(EstuaryError):
    """A server payload that breaks protocol.md (code PROTOCOL_ERROR)."""

    def __init__(self, event: str, field_name: str, expected: str, got: object) -> None:
        super().__init__(
            ErrorCode.PROTOCOL_ERROR, f"{event}: field {field_name!r}: expected {expected}, got {repr(got)[:80]}"
        )
        self.event, self.field, self.expected, self.got = event, field_name, expected, got


class _Reader:
    """Field access on one payload that raises PayloadError with the event's name."""

    def __init__(self, event: str, raw: object) -> None:
        if raw is None:
            raw = {}  # WIRE-1 is the server's duty; a missing argument reads as an empty object
        if not isinstance(raw, dict):
            raise PayloadError(event, "<payload>", "a JSON object", raw)
        self.event, self.raw = event, raw

    def _get(self, name: str, kinds: tuple[type, ...], expected: str, required: bool, default: Any) -> Any:
        if self.raw.get(name) is None:
            if required:
                raise PayloadError(self.event, name, expected, "<missing>")
            return default
        value = self.raw[name]
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise PayloadError(self.event, name, expected, value)
        return value

    def text(self, name: str, *, required: bool = True, nonempty: bool = False, default: str | None = None) -> Any:
        value = self._get(name, (str,), "a string" + (" (non-empty)" if nonempty else ""), required, default)
        if nonempty and isinstance(value, str) and not value.strip():
            raise PayloadError(self.event, name, "a non-empty string", value)
        return value

    def flag(self, name: str, *, required: bool = False, default: bool = False) -> bool:
        return bool(self._get(name, (bool,), "true or false", required, default))

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        return self._get(name, (int,), "an integer", required, default)

    def number(self, name: str, *, required: bool = False, default: float | None = None) -> Any:
        value = self._get(name, (int, float), "a number", required, default)
        return float(value) if value is not None else None


@dataclass(frozen=True)
class SessionInfo:
    """``session_info`` (CONN-4); the camelCase extras are optional."""

    session_id: str
    conversation_id: str
    character_id: str
    player_id: str
    livekit_token: str | None = field(default=None, repr=False)
    livekit_url: str | None = None
    livekit_room: str | None = None


@dataclass(frozen=True)
class Connected:
    """App event ``connected``: the session is open (also after an automatic reconnect)."""

    session: SessionInfo
    reconnect: bool = False


@dataclass(frozen=True)
class Disconnected:
    """App event ``disconnected``: the socket is gone; ``reason`` says why."""

    reason: str
    will_reconnect: bool = False


@dataclass(frozen=True)
class AuthError:
    error: str


@dataclass(frozen=True)
class ServerError:
    """``error {message}``."""

    message: str


@dataclass(frozen=True)
class SttResponse:
    text: str
    is_final: bool


@dataclass(frozen=True)
class BotResponse:
    text: str
    is_final: bool
    partial: bool = False
    message_id: str | None = None
    chunk_index: int | None = None
    is_interjection: bool = False


@dataclass(frozen=True)
class BotVoice:
    """``bot_voice``: audio (WebSocket, WS-4) or metadata only (LiveKit, LK-8); ``audio`` is decoded PCM16 bytes."""

    message_id: str | None
    chunk_index: int | None
    is_final: bool = False
    audio: bytes | None = field(default=None, repr=False)
    sample_rate: int | None = None
    is_livekit: bool = False


@dataclass(frozen=True)
class Interrupt:
    message_id: str | None = None
    reason: str | None = None
    interrupted_at: float | None = None


@dataclass(frozen=True)
class SessionTimeout:
    reason: str
    idle_seconds: float | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class VoiceTimeout:
    reason: str
    idle_seconds: float | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class VoiceStarted:
    pass


@dataclass(frozen=True)
class VoiceStopped:
    pass


@dataclass(frozen=True)
class VoiceError:
    error: str


@dataclass(frozen=True)
class LiveKitToken:
    """``livekit_token {token, url, room}``; the JWT never shows in a repr."""

    token: str = field(repr=False)
    url: str
    room: str


@dataclass(frozen=True)
class LiveKitReady:
    room: str


@dataclass(frozen=True)
class LiveKitError:
    error: str


@dataclass(frozen=True)
class LiveKitDisconnected:
    """App event ``livekit_disconnected()``: a connected room ended (once per room, LIFE-3)."""

    room: str
    reason: str


def _session_info(r: _Reader) -> SessionInfo:
    return SessionInfo(
        session_id=r.text("session_id", nonempty=True),
        conversation_id=r.text("conversation_id", nonempty=True),
        character_id=r.text("character_id", nonempty=True),
        player_id=r.text("player_id", nonempty=True),
        livekit_token=r.text("livekitToken", required=False),
        livekit_url=r.text("livekitUrl", required=False),
        livekit_room=r.text("livekitRoom", required=False),
    )


def _bot_voice(r: _Reader) -> BotVoice:
    encoded = r.text("audio", required=False)
    data: bytes | None = None
    if encoded is not None:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(r.event, "audio", "base64 PCM16", encoded[:20]) from exc
        if len(data) % 2:
            raise PayloadError(r.event, "audio", "an even number of PCM16 bytes", f"{len(data)} bytes")
    return BotVoice(
        message_id=r.text("message_id", required=False),
        chunk_index=r.integer("chunk_index"),
        is_final=r.flag("is_final"),
        audio=data,
        sample_rate=r.integer("sample_rate"),
        is_livekit=r.flag("is_livekit"),
    )


def _timeout(cls: type[T]) -> Callable[[_Reader], T]:
    def build(r: _Reader) -> T:
        reason = r.text("reason", required=False, default="") or ""
        return cls(reason, r.number("idle_seconds"), r.number("timeout_seconds"))  # type: ignore[call-arg]

    return build


def _error_text(r: _Reader, name: str) -> str:
    return str(r.text(name, required=False, default="") or "(no reason given)")


_PARSERS: dict[str, Callable[[_Reader], object]] = {
    "session_info": _session_info,
    "auth_error": lambda r: AuthError(_error_text(r, "error")),
    "error": lambda r: ServerError(_error_text(r, "message")),
    "stt_response": lambda r: SttResponse(r.text("text"), r.flag("is_final", required=True)),
    "bot_response": lambda r: BotResponse(
        text=r.text("text"),
        is_final=r.flag("is_final", required=True),
        partial=r.flag("partial"),
        message_id=r.text("message_id", required=False),
        chunk_index=r.integer("chunk_index"),
        is_interjection=r.flag("is_interjection"),
    ),
    "bot_voice": _bot_voice,
    "interrupt": lambda r: Interrupt(
        r.text("message_id", required=False), r.text("reason", required=False), r.number("interrupted_at")
    ),
    "session_timeout": _timeout(SessionTimeout),
    "voice_timeout": _timeout(VoiceTimeout),
    "voice_started": lambda r: VoiceStarted(),
    "voice_stopped": lambda r: VoiceStopped(),
    "voice_error": lambda r: VoiceError(_error_text(r, "error")),
    "livekit_token": lambda r: LiveKitToken(
        r.text("token", nonempty=True), r.text("url", nonempty=True), r.text("room", nonempty=True)
    ),
    "livekit_ready": lambda r: LiveKitReady(r.text("room", nonempty=True)),
    "livekit_error": lambda r: LiveKitError(_error_text(r, "error")),
}

# The events the client makes itself; a server event of one of these names is refused (never acted upon).
CLIENT_EVENTS = frozenset(
    {
        "connected",
        "disconnected",
        "livekit_connected",
        "livekit_disconnected",
        "reconnecting",
        "reconnect_failed",
        "protocol_error",
        "teardown_failed",
    }
)
# Events an app can subscribe to with ``client.on``: the wire events above plus the client's own.
APP_EVENTS = frozenset(_PARSERS) | CLIENT_EVENTS


def parse(event: str, raw: object) -> object:
    """The typed payload of a server event; an unknown event keeps its raw payload."""
    parser = _PARSERS.get(event)
    if parser is None:
        return raw
    return parser(_Reader(event, raw))
