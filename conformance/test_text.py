"""Server conformance, section 3 (TEXT): text in, streamed replies out."""

from __future__ import annotations

import asyncio

import pytest

from conformance.checks import Stopwatch, expect
from conformance.factories import PeerFactory
from conformance.peer import RawPeer, WireEvent

pytestmark = pytest.mark.asyncio


def _is_final(event: WireEvent) -> bool:
    return isinstance(event.payload, dict) and event.payload.get("is_final") is True


async def _reply(p: RawPeer, text: str, **extra: object) -> tuple[list[WireEvent], float]:
    """Send ``text`` and collect the bot_response stream up to its final chunk."""
    watch = Stopwatch()
    await p.emit("text", {"text": text, **extra})
    final = await p.wait("bot_response", predicate=_is_final, since=watch.start)
    stream = [e for e in p.seen("bot_response", since=watch.start) if e.t <= final.t]
    return stream, watch.lap()


@pytest.mark.estuary_case("TEXT-1", "MUST")
async def test_text_1_bot_response_stream_is_well_formed(peer: PeerFactory, record_estuary_timing: object) -> None:
    """`text` yields bot_response chunks sharing one message_id, chunk_index 0,1,2…, exactly one final chunk, last, with the complete text."""
    p = peer()
    await p.session()
    stream, elapsed = await _reply(p, "Tell me something about rivers.")
    record_estuary_timing("text_to_final_reply", elapsed)  # type: ignore[operator]
    payloads = [e.payload for e in stream]
    required = {"text", "is_final", "partial", "message_id", "chunk_index", "is_interjection"}
    missing = [sorted(required - set(p)) for p in payloads if not required <= set(p)]
    expect(not missing, expected=f"every chunk has {sorted(required)}", actual=missing)
    ids = {p["message_id"] for p in payloads}
    expect(len(ids) == 1, expected="one message_id for the whole stream", actual=ids)
    indexes = [p["chunk_index"] for p in payloads]
    expect(indexes == list(range(len(indexes))), expected="chunk_index 0,1,2,…", actual=indexes)
    finals = [i for i, p in enumerate(payloads) if p["is_final"] is True]
    expect(finals == [len(payloads) - 1], expected="exactly one is_final chunk, the last", actual=finals)
    final_text = payloads[-1]["text"]
    expect(
        isinstance(final_text, str) and final_text.strip(),
        expected="the final chunk's text: the complete reply",
        actual=final_text,
    )
    # Delta or cumulative chunks alike: every piece is part of the complete response.
    stray = [p["text"] for p in payloads[:-1] if str(p["text"]).strip() not in final_text]
    expect(not stray, expected="every partial chunk's text within the final, complete text", actual=stray)


@pytest.mark.estuary_case("TEXT-2", "SHOULD")
async def test_text_2_bot_voice_follows_unless_text_only(peer: PeerFactory) -> None:
    """Unless `textOnly`, bot_voice chunks with the reply's message_id follow; with `textOnly` none do."""
    p = peer()
    await p.session()
    stream, _ = await _reply(p, "Say something.")
    message_id = stream[-1].payload["message_id"]
    voice = await p.wait(
        "bot_voice", predicate=lambda e: isinstance(e.payload, dict) and e.payload.get("message_id") == message_id
    )
    expect(voice.payload.get("chunk_index") is not None, expected="bot_voice with a chunk_index", actual=voice.payload)
    silent_stream, _ = await _reply(p, "Quietly now.", textOnly=True)
    silent_id = silent_stream[-1].payload["message_id"]
    expect(silent_id != message_id, expected="a new message_id per reply", actual=silent_id)
    await asyncio.sleep(1.0)
    voiced = [e.describe() for e in p.seen("bot_voice") if e.payload.get("message_id") == silent_id]
    expect(not voiced, expected="no bot_voice for a textOnly reply", actual=voiced)


@pytest.mark.estuary_case("TEXT-3", "INFO")
async def test_text_3_interrupt_is_answered(peer: PeerFactory) -> None:
    """`client_interrupt {message_id?}` is answered with `interrupt {message_id?, reason?, interrupted_at?}`; `say_line` is accepted."""
    p = peer()
    await p.session()
    watch = Stopwatch()
    await p.emit("say_line", {"text": "A line to speak.", "text_only": False})
    await p.emit("client_interrupt", {})
    got = await p.wait(("interrupt", "error"), since=watch.start)
    expect(got.name == "interrupt", expected="interrupt after client_interrupt", actual=got.describe())
