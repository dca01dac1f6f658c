"""The bot's "brain": a scripted or echoed reply, streamed as bot_response chunks."""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["Brain", "reply_chunks"]

WORDS_PER_CHUNK = 3


class Brain:
    """Scripted replies first (in order), then a deterministic echo of what was said."""

    def __init__(self) -> None:
        self.scripted: deque[str] = deque()

    def reply(self, said: str) -> str:
        return self.scripted.popleft() if self.scripted else f"You said: {said}"


def reply_chunks(reply: str, message_id: str) -> list[dict[str, Any]]:
    """bot_response payloads: partial pieces of a few words, then one final chunk with the whole text."""
    words = reply.split()
    pieces = [" ".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)]
    chunks = [
        {
            "text": piece,
            "is_final": False,
            "partial": True,
            "message_id": message_id,
            "chunk_index": index,
            "is_interjection": False,
        }
        for index, piece in enumerate(pieces)
    ]
    chunks.append(
        {
            "text": reply,
            "is_final": True,
            "partial": False,
            "message_id": message_id,
            "chunk_index": len(pieces),
            "is_interjection": False,
        }
    )
    return chunks
