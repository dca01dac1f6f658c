"""ClientConfig: every constructor argument, validated once, with precise errors."""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from pytest_estuary.client.errors import ConfigError

if TYPE_CHECKING:
    from pytest_estuary.client.audio_input import AudioInput

__all__ = ["TRANSPORTS", "AuthStyle", "ClientConfig", "VoiceTransport"]

AuthStyle = Literal["event", "connect"]
VoiceTransport = Literal["auto", "livekit", "websocket"]
TRANSPORTS: tuple[VoiceTransport, ...] = ("auto", "livekit", "websocket")
SAMPLE_RATES = (8000, 16000, 24000, 44100, 48000)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, "a non-empty string", value)
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(name, "a positive, finite number of seconds", value)
    return float(value)


class _Redacted:
    def __init__(self, value: object) -> None:
        self.text = f"<{type(value).__name__} of length {len(value) if isinstance(value, str) else '?'}>"

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ClientConfig:
    """What an :class:`EstuaryClient` was built with. ``voice_transport`` is checked at
    ``start_voice()`` (SEL-4 → VOICE_NOT_SUPPORTED), everything else here."""

    server_url: str
    api_key: str = field(repr=False)
    character_id: str
    player_id: str
    voice_transport: VoiceTransport = "auto"  # checked at start_voice(): SEL-4 wants VOICE_NOT_SUPPORTED there
    audio_input: AudioInput | None = None
    token_timeout: float = 10.0
    ready_timeout: float = 5.0
    connect_timeout: float = 10.0
    session_info_timeout: float = 15.0  # CONN-4: session_info within 15 s
    voice_start_timeout: float = 10.0  # WS-1: voice_started within 10 s
    leave_timeout: float = 5.0  # LK-9: each step of stop_voice()/disconnect() (room leave, voice_stopped, socket close)
    auth_style: AuthStyle = "event"
    audio_sample_rate: int = 24000
    reconnect: bool = True
    max_reconnect_attempts: int = 5
    # TLS: a PEM bundle trusted besides the system store (also for LiveKit: see pytest_estuary.tls),
    # or a ready context (Socket.IO only: livekit.rtc cannot take one). Socket.IO's mount path.
    ca_file: str | Path | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    socketio_path: str = "/socket.io/"

    def __post_init__(self) -> None:
        from pytest_estuary.client.audio_input import AudioInput

        url = _text("server_url", self.server_url)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.hostname:
            raise ConfigError("server_url", "an http(s):// or ws(s):// URL with a host", url)
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            # never echo a secret: show only its type and length
            raise ConfigError("api_key", "a non-empty string", _Redacted(self.api_key))
        _text("character_id", self.character_id)
        _text("player_id", self.player_id)
        if not isinstance(self.voice_transport, str):
            raise ConfigError("voice_transport", f"one of {TRANSPORTS}", self.voice_transport)
        if self.audio_input is not None and not isinstance(self.audio_input, AudioInput):
            raise ConfigError("audio_input", "an AudioInput (e.g. SyntheticAudioInput) or None", self.audio_input)
        for name in ("token_timeout", "ready_timeout", "connect_timeout", "session_info_timeout",
                     "voice_start_timeout", "leave_timeout"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        if self.auth_style not in ("event", "connect"):
            raise ConfigError("auth_style", "'event' (authenticate event) or 'connect' (CONNECT auth)", self.auth_style)
        rate = self.audio_sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or rate not in SAMPLE_RATES:
            raise ConfigError("audio_sample_rate", f"an int Hz rate among {SAMPLE_RATES}", rate)
        if not isinstance(self.reconnect, bool):
            raise ConfigError("reconnect", "True or False", self.reconnect)
        attempts = self.max_reconnect_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise ConfigError("max_reconnect_attempts", "an int >= 0", attempts)
        self._check_tls()

    def _check_tls(self) -> None:
        from pytest_estuary.tls import CaFileError, check_ca_file, ssl_context

        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigError("ssl_context", "an ssl.SSLContext or None", self.ssl_context)
        if self.ca_file is not None:
            if not isinstance(self.ca_file, str | Path):
                raise ConfigError("ca_file", "a path to a PEM bundle, or None", self.ca_file)
            try:
                check_ca_file(self.ca_file, "ca_file")
            except CaFileError as exc:
                raise ConfigError("ca_file", "a readable file with PEM certificates", str(exc)) from None
            if self.ssl_context is None:  # built once: loading the system store costs milliseconds
                object.__setattr__(self, "ssl_context", ssl_context(self.ca_file))
        path = self.socketio_path
        if not isinstance(path, str) or not path.startswith("/") or "?" in path or "//" in path:
            raise ConfigError("socketio_path", "a path such as '/socket.io/' or '/estuary/socket.io/'", path)

    def tls(self) -> ssl.SSLContext:
        """The context every TLS connection of this client uses (system store by default)."""
        if self.ssl_context is None:
            object.__setattr__(self, "ssl_context", ssl.create_default_context())
        assert self.ssl_context is not None
        return self.ssl_context

    def auth(self) -> dict[str, object]:
        """The auth dict of CONN-2/CONN-3."""
        return {
            "api_key": self.api_key,
            "character_id": self.character_id,
            "player_id": self.player_id,
            "audio_sample_rate": self.audio_sample_rate,
            "capabilities": {"version": "1", "microphone": True, "speaker": True},
        }
