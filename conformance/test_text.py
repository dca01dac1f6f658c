"""Server conformance, section 3 (TEXT): text in, streamed replies out."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from conformance.checks import Stopwatch, expect
from conformance.factories import PeerFactory
from conformance.peer import NO_ARGUMENT
from conformance.text import final_reply, interrupted, reply_stream, still_serves

pytestmark = pytest.mark.asyncio


@pytest.mark.estuary_case("TEXT-1", "MUST")
async def test_text_1_bot_response_stream_is_well_formed(peer: PeerFactory, record_estuary_timing: Any) -> None:
    """`text` yields bot_response chunks sharing one message_id, chunk_index 0,1,2…, exactly one final chunk, last, with the complete text."""
    p = peer()
    await p.session()
    stream, elapsed = await reply_stream(p, "Tell me something about rivers.")
    record_estuary_timing("text_to_final_reply", elapsed)
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
    # What follows the final chunk counts too: no chunk of this message may come after it. The
    # window is calibrated on the stream itself: 3x its longest gap between chunks, at least 1 s.
    times = [e.t for e in stream]
    gaps = [b - a for a, b in itertools.pairwise(times)] or [0.0]
    window = min(5.0, max(1.0, 3 * max(gaps)))
    message_id = payloads[-1]["message_id"]
    await asyncio.sleep(window)
    late = [
        e.describe()
        for e in p.seen("bot_response", since=stream[-1].t + 1e-6)
        if e.payload.get("message_id") == message_id
    ]
    expect(
        not late,
        expected=f"nothing of message {message_id!r} after its final chunk (watched {window:.1f} s)",
        actual=late,
    )


@pytest.mark.estuary_case("TEXT-2", "SHOULD")
async def test_text_2_bot_voice_follows_unless_text_only(peer: PeerFactory) -> None:
    """Unless `textOnly`, bot_voice chunks with the reply's message_id follow; with `textOnly` none do."""
    p = peer()
    await p.session()
    voice_asked = Stopwatch().start
    message_id = (await final_reply(p, "Say something.")).payload["message_id"]
    voice = await p.wait(
        "bot_voice", predicate=lambda e: isinstance(e.payload, dict) and e.payload.get("message_id") == message_id
    )
    expect(voice.payload.get("chunk_index") is not None, expected="bot_voice with a chunk_index", actual=voice.payload)
    silent_id = (await final_reply(p, "Quietly now.", textOnly=True)).payload["message_id"]
    expect(silent_id != message_id, expected="a new message_id per reply", actual=silent_id)
    # The voiced reply's first bot_voice came within this server's own delay: wait 3x that (≥ 1 s).
    await asyncio.sleep(max(1.0, 3 * (voice.t - voice_asked)))
    voiced = [e.describe() for e in p.seen("bot_voice") if e.payload.get("message_id") == silent_id]
    expect(not voiced, expected="no bot_voice for a textOnly reply", actual=voiced)


INTERRUPT_FORMS = {"no_argument": NO_ARGUMENT, "null": None, "object": {}, "message_id": {"message_id": "msg-x"}}


@pytest.mark.estuary_case("TEXT-3", "INFO")
async def test_text_3_interrupt_is_answered(peer: PeerFactory) -> None:
    """`client_interrupt` (no argument, null, {}, {message_id}) is answered with `interrupt {message_id?, reason?, interrupted_at?}`; `say_line` is accepted."""
    p = peer()
    await p.session()
    await p.emit("say_line", {"text": "A line to speak.", "text_only": False})
    for form, payload in INTERRUPT_FORMS.items():
        await interrupted(p, payload, form)


@pytest.mark.estuary_case("TEXT-4", "INFO")
async def test_text_4_playback_complete_is_accepted_silently(peer: PeerFactory) -> None:
    """`audio_playback_complete {message_id}` is accepted silently: no `error`, and the session keeps serving."""
    p = peer()
    await p.session()
    message_id = (await final_reply(p, "Say something short.")).payload["message_id"]
    watch = Stopwatch()
    await p.emit("audio_playback_complete", {"message_id": message_id})
    await still_serves(p, "audio_playback_complete")
    refused = [e.describe() for e in p.seen("error", since=watch.start)]
    expect(not refused, expected="no error for audio_playback_complete", actual=refused)
    expect(p.sio.connected, expected="the connection still open", actual="closed")
