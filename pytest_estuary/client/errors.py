"""Errors of the client: one root, :class:`EstuaryError`, whose ``code`` says which documented kind it is.

Every exception the client raises on purpose is an ``EstuaryError``. Two keep a built-in base too,
so code written for the built-ins still works: :class:`ConfigError` is a ``ValueError`` and
:class:`EventTimeout` is a ``TimeoutError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

__all__ = ["ConfigError", "ErrorCode", "EstuaryError", "EventTimeout"]


class ErrorCode(StrEnum):
    """Why a client operation failed; ``EstuaryError.code`` holds one of these (the complete list)."""

    LIVEKIT_UNAVAILABLE = "LIVEKIT_UNAVAILABLE"  # ERR-1: livekit.rtc selected but cannot be loaded
    CONNECTION_TIMEOUT = "CONNECTION_TIMEOUT"  # ERR-2/ERR-8: a phase of connect/start/stop did not finish in time
    CONNECTION_FAILED = "CONNECTION_FAILED"  # ERR-3/ERR-9: socket or room refused/closed, livekit_error, mismatch
    MICROPHONE_DENIED = "MICROPHONE_DENIED"  # ERR-4: the audio input could not be opened
    VOICE_NOT_SUPPORTED = "VOICE_NOT_SUPPORTED"  # SEL-4: unknown voice_transport
    AUTH_FAILED = "AUTH_FAILED"  # ERR-6: auth_error during connect
    NOT_CONNECTED = "NOT_CONNECTED"  # ERR-6: voice or text used before connect()
    VOICE_ALREADY_ACTIVE = "VOICE_ALREADY_ACTIVE"  # ERR-6
    VOICE_NOT_ACTIVE = "VOICE_NOT_ACTIVE"  # ERR-6
    PROTOCOL_ERROR = "PROTOCOL_ERROR"  # session_info that breaks CONN-4; the payload of app event protocol_error
    INVALID_ARGUMENT = "INVALID_ARGUMENT"  # ConfigError: a bad argument from the caller, no I/O was done
    EVENT_TIMEOUT = "EVENT_TIMEOUT"  # wait_for / say / wait_for_sound: the awaited event did not come


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
        return f"{type(self).__name__}({self.code.value}, {self.message!r})"


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(EstuaryError, ValueError):
    """A bad argument (code INVALID_ARGUMENT): names the field, what was expected and what came."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, f"{field}: expected {expected}, got {_shown(got)}")
        self.field = field
        self.expected = expected
        self.got = got


class EventTimeout(EstuaryError, TimeoutError):
    """A bounded wait gave up: says what was awaited, for how long, and what was seen instead.

    ``code`` is EVENT_TIMEOUT for the app's own waits (``wait_for``) and CONNECTION_TIMEOUT for a
    phase of ``connect()``/``start_voice()``/``stop_voice()``/``disconnect()``; then ``phase``
    names it (e.g. ``"Engine.IO open"``) and ``setting`` the option that bounds it.
    """

    def __init__(
        self,
        awaited: str,
        timeout: float,
        seen: Sequence[str],
        *,
        code: ErrorCode = ErrorCode.EVENT_TIMEOUT,
        phase: str | None = None,
        setting: str | None = None,
    ) -> None:
        shown = ", ".join(seen[-12:]) if seen else "nothing"
        bound = f"{timeout:g} s" + (f" ({setting})" if setting else "")
        where = f"{phase}: " if phase else ""
        super().__init__(code, f"{where}timed out after {bound} waiting for {awaited}; saw instead: {shown}")
        self.awaited = awaited
        self.timeout = timeout
        self.seen = list(seen)
        self.phase = phase
        self.setting = setting
