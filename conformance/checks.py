"""Assertions that print a requirement's Expected / Actual, and small protocol helpers."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

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


def normalise_words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def loosely_matches(transcript: str, said: str, *, max_word_errors: int = 1) -> bool:
    """A transcript matches what was said up to case, punctuation and a few word errors."""
    heard, wanted = normalise_words(transcript), normalise_words(said)
    # Levenshtein distance over words: small recogniser slips are not protocol failures.
    previous = list(range(len(wanted) + 1))
    for i, word in enumerate(heard, 1):
        current = [i]
        for j, target in enumerate(wanted, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != target)))
        previous = current
    return previous[-1] <= max(max_word_errors, len(wanted) // 4)


class Stopwatch:
    """Seconds since creation; ``lap()`` returns them."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def lap(self) -> float:
        return time.monotonic() - self.start
