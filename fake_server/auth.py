"""Checking the auth dict of CONN-2/CONN-3; every refusal names the field."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from fake_server.redact import quote

__all__ = ["AuthError", "Credentials", "check_auth"]

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_SAMPLE_RATE = 24000


class AuthError(ValueError):
    """Authentication refused; the message is what ``auth_error {error}`` carries."""


@dataclass(frozen=True)
class Credentials:
    character_id: str
    player_id: str
    audio_sample_rate: int = DEFAULT_SAMPLE_RATE


def check_auth(auth: Any, accepted_keys: Collection[str]) -> Credentials:
    if not isinstance(auth, dict):
        raise AuthError(f"auth must be an object with api_key, character_id and player_id, got {type(auth).__name__}")
    key = auth.get("api_key")
    if not isinstance(key, str) or not key:
        raise AuthError("auth.api_key is missing or not a string")
    if key not in accepted_keys:
        raise AuthError("auth.api_key is not a valid API key for this server")
    ids = {}
    for name in ("character_id", "player_id"):
        value = auth.get(name)
        if value is None:
            raise AuthError(f"auth.{name} is missing")
        if not isinstance(value, str) or not value.strip():
            raise AuthError(f"auth.{name} must be a non-empty string, got {type(value).__name__}")
        ids[name] = value
    rate = auth.get("audio_sample_rate", DEFAULT_SAMPLE_RATE)
    if rate is None:
        rate = DEFAULT_SAMPLE_RATE
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in SAMPLE_RATES:
        raise AuthError(f"auth.audio_sample_rate must be one of {SAMPLE_RATES}, got {quote(rate)}")
    memory = auth.get("realtime_memory")
    if memory is not None and not isinstance(memory, bool):
        raise AuthError(f"auth.realtime_memory must be true or false, got {quote(memory)}")
    capabilities = auth.get("capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, dict):
            raise AuthError(f"auth.capabilities must be an object, got {type(capabilities).__name__}")
        if capabilities.get("version") != "1":
            raise AuthError(f'auth.capabilities.version must be "1", got {quote(capabilities.get("version"))}')
    return Credentials(ids["character_id"], ids["player_id"], rate)
