"""Text replies as a step of TEXT-1: cases that need a complete reply are BLOCKED when none comes."""

from __future__ import annotations

from typing import Any

from conformance.checks import Stopwatch, expect
from conformance.peer import ConnectionClosed, RawPeer, WireEvent
from pytest_estuary.verdicts import step

__all__ = ["final_reply", "interrupted", "is_final", "reply_stream", "still_serves"]


def is_final(event: WireEvent) -> bool:
    return event.payload.get("is_final") is True


async def reply_stream(p: RawPeer, text: str, **extra: object) -> tuple[list[WireEvent], float]:
    """Send ``text`` and collect the bot_response stream up to its final chunk (stream, seconds)."""
    watch = Stopwatch()
    await p.emit("text", {"text": text, **extra})
    final = await p.wait("bot_response", predicate=is_final, since=watch.start)
    stream = [e for e in p.seen("bot_response", since=watch.start) if e.t <= final.t]
    return stream, watch.lap()


async def final_reply(p: RawPeer, text: str, **extra: object) -> WireEvent:
    """The final ``bot_response`` chunk for ``text`` (a step of TEXT-1)."""
    with step("TEXT-1", "a final bot_response chunk for a text message"):
        stream, _ = await reply_stream(p, text, **extra)
    return stream[-1]


async def still_serves(p: RawPeer, after: str) -> None:
    """The session still answers text after ``after``, which the calling case sent.

    A connection the server closed is the calling case's failure (its event was what the server
    hung up on); a reply that does not come is a step of TEXT-1, as in :func:`final_reply`.
    """
    closed: ConnectionClosed | None = None
    with step("TEXT-1", "a final bot_response chunk for a text message"):
        try:
            await reply_stream(p, f"still serving after {after}?")
        except ConnectionClosed as exc:
            closed = exc
    if closed is not None:
        raise AssertionError(f"Expected: the connection open and text answered after {after}\nActual:   {closed}")


async def interrupted(p: RawPeer, payload: Any, form: str) -> None:
    """``client_interrupt`` sent as ``payload`` (described as ``form``) is answered with ``interrupt``."""
    watch = Stopwatch()
    await p.emit("client_interrupt", payload)
    got = await p.wait(("interrupt", "error"), since=watch.start)
    expect(
        got.name == "interrupt", expected=f"interrupt after client_interrupt sent with {form}", actual=got.describe()
    )
