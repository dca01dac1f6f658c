"""Error codes of the client (the seed page's codes plus the ones protocol.md names)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConfigError", "ErrorCode", "EstuaryError", "EventTimeout"]


class ErrorCode(StrEnum):
    """Why a client operation failed; ``EstuaryError.code`` holds one of these."""

    LIVEKIT_UNAVAILABLE = "LIVEKIT_UNAVAILABLE"  # ERR-1: livekit.rtc selected but cannot be loaded
    CONNECTION_TIMEOUT = "CONNECTION_TIMEOUT"  # ERR-2/ERR-8: a reply did not come in time
    CONNECTION_FAILED = "CONNECTION_FAILED"  # ERR-3/ERR-9: room connection failed, livekit_error, room mismatch
    MICROPHONE_DENIED = "MICROPHONE_DENIED"  # ERR-4: the audio input could not be opened
    VOICE_NOT_SUPPORTED = "VOICE_NOT_SUPPORTED"  # SEL-4: unknown voice_transport
    AUTH_FAILED = "AUTH_FAILED"  # ERR-6: auth_error during connect
    NOT_CONNECTED = "NOT_CONNECTED"  # ERR-6: voice or text used before connect()
    VOICE_ALREADY_ACTIVE = "VOICE_ALREADY_ACTIVE"  # ERR-6
    VOICE_NOT_ACTIVE = "VOICE_NOT_ACTIVE"  # ERR-6
    PROTOCOL_ERROR = "PROTOCOL_ERROR"  # added: the server sent a payload that breaks protocol.md
    SESSION_ENDED = "SESSION_ENDED"  # added: the socket closed before session_info arrived


class EstuaryError(Exception):
    """A failed client operation: ``code`` says which kind, the message says why (with the cause's
    text); ``__cause__`` keeps the underlying exception (ERR-5)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"EstuaryError({self.code.value}, {self.message!r})"


class ConfigError(ValueError):
    """A bad constructor argument: names the field, what was expected and what came."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: expected {expected}, got {shown}")
        self.field = field
        self.expected = expected
        self.got = got


class EventTimeout(TimeoutError):
    """``wait_for`` gave up: the message says what was awaited and what was seen instead."""

    def __init__(self, awaited: str, timeout: float, seen: list[str]) -> None:
        shown = ", ".join(seen[-12:]) if seen else "nothing"
        super().__init__(f"timed out after {timeout:.1f} s waiting for {awaited}; saw instead: {shown}")
        self.awaited = awaited
        self.timeout = timeout
        self.seen = seen
