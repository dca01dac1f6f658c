"""Comparing a transcript with what was said, loosely: recognisers slip, the protocol is not at fault."""

from __future__ import annotations

import re

__all__ = ["loosely_matches", "normalise_words"]


def normalise_words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def loosely_matches(transcript: str, said: str, *, max_word_errors: int = 1) -> bool:
    """A transcript matches what was said up to case, punctuation and a few word errors (at least
    ``max_word_errors``, or a quarter of the words)."""
    heard, wanted = normalise_words(transcript), normalise_words(said)
    # Levenshtein distance over words
    previous = list(range(len(wanted) + 1))
    for i, word in enumerate(heard, 1):
        current = [i]
        for j, target in enumerate(wanted, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != target)))
        previous = current
    return previous[-1] <= max(max_word_errors, len(wanted) // 4)
