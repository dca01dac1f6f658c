"""Assertions that print a requirement's Expected / Actual, and small protocol helpers."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from pytest_estuary.transcripts import loosely_matches, normalise_words

__all__ = ["Stopwatch", "decode_jwt_claims", "expect", "loosely_matches", "normalise_words"]


def expect(condition: object, *, expected: str, actual: object, context: str = "") -> None:
    """Fail with an Expected/Actual message unless ``condition`` holds."""
    if condition:
        return
    lines = [context] if context else []
    lines += [
        f"Expected: {expected}",
        f"Actual:   {actual!r}" if not isinstance(actual, str) else f"Actual:   {actual}",
    ]
    raise AssertionError("\n".join(lines))


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the LiveKit server verifies; we only read grants)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError(f"Expected: a JWT (three dot-separated parts)\nActual:   {len(parts)} part(s)")
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
    return claims


class Stopwatch:
    """Seconds since creation; ``lap()`` returns them."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def lap(self) -> float:
        return time.monotonic() - self.start
