"""Secrets out of everything the server writes: error texts, logs, the event log's JSON.

A client may put an API key or a JWT anywhere (a ``turn_mode``, a ``text``), so redaction goes by
what a value looks like, not only by its key's name.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECRET_KEYS", "quote", "redact_text", "redact_value"]

SECRET_KEYS = frozenset({"api_key", "token", "api_secret", "secret", "password", "authorization"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){1,2}")
# Long runs of key alphabet holding letters and digits: API keys, secrets, tokens. Room names
# (``estuary-`` + 12 hex) and the server's ids stay below 24 characters and keep readable.
_KEY_LIKE = re.compile(r"[A-Za-z0-9_\-+/=]{24,}")
_LETTER, _DIGIT = re.compile(r"[A-Za-z]"), re.compile(r"\d")
KEEP = 4


def _cut(secret: str) -> str:
    return secret[:KEEP] + "…"


def _key_like(match: re.Match[str]) -> str:
    text = match.group(0)
    return _cut(text) if _LETTER.search(text) and _DIGIT.search(text) else text


def redact_text(text: str) -> str:
    """``text`` with JWT-like and API-key-like runs cut to a 4-character prefix."""
    if len(text) < 24:
        return text
    return _KEY_LIKE.sub(_key_like, _JWT.sub(lambda m: _cut(m.group(0)), text))


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value: secret-named keys cut, every string redacted by pattern."""
    if isinstance(value, dict):
        return {
            k: (_cut(str(v)) if isinstance(k, str) and k.lower() in SECRET_KEYS and v else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def quote(value: Any, limit: int = 120) -> str:
    """``repr(value)`` for an error text: redacted, then cut to ``limit`` characters.

    Cut generously before redacting (a huge payload costs nothing) and tightly after, so no secret
    is cut so short that it no longer looks like one."""
    text = redact_text(repr(value)[: limit * 8])
    return text if len(text) <= limit else text[: limit - 1] + "…"
