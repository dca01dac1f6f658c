"""Replies: one voiced at a time per session (a queue), TEXT-4 playback acks, and the bot's
``estuary.message_id`` attribute while it speaks (protocol.md §9)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials

BOUND = 10.0


@pytest.fixture(scope="module")
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeEstuaryServer) -> None:
    fake.reset()


def runs(ids: list[str]) -> list[str]:
    """``ids`` with repeats folded: [a, a, b, b] → [a, b]; an interleaving shows as [a, b, a, …]."""
    return [value for i, value in enumerate(ids) if i == 0 or ids[i - 1] != value]


@pytest.mark.asyncio
async def test_websocket_replies_are_voiced_one_at_a_time(fake: FakeEstuaryServer, make_peer: Any) -> None:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key, audio_sample_rate=16000)
    await peer.emit("start_voice", None)
    await peer.wait("voice_started")
    for text in ("first question, a long one so that its voice takes a while", "second", "third one"):
        await peer.emit("text", {"text": text})
    finals = []
    deadline = time.monotonic() + BOUND
    while len(finals) < 3 and time.monotonic() < deadline:
        finals = [p for p in peer.payloads("bot_voice") if p.get("is_final")]
        await asyncio.sleep(0.05)
    chunks = peer.payloads("bot_voice")
    ids = [c["message_id"] for c in chunks]
    assert len(set(ids)) == 3 and runs(ids) == list(dict.fromkeys(ids)), f"interleaved: {runs(ids)}"
    for message_id in set(ids):
        indexes = [c["chunk_index"] for c in chunks if c["message_id"] == message_id]
        assert indexes == list(range(len(indexes)))


@pytest.mark.asyncio
async def test_audio_playback_complete_is_accepted_and_recorded(fake: FakeEstuaryServer, make_peer: Any) -> None:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    await peer.emit("audio_playback_complete", {"message_id": "msg-123"})
    await peer.emit("audio_playback_complete", None)
    await peer.text_round_trip()
    assert not peer.payloads("error")
    logged = [e.payload for e in fake.events.find(name="audio_playback_complete", direction="in")]
    assert logged == [{"message_id": "msg-123"}, None]
    await peer.emit("audio_playback_complete", {"message_id": 7})
    error = await peer.wait("error")
    assert "audio_playback_complete" in error["message"] and "message_id" in error["message"]


@pytest.mark.asyncio
async def test_livekit_bot_shows_the_message_it_speaks_and_speaks_one_at_a_time(
    fake: FakeEstuaryServer, make_peer: Any, make_voice: Any
) -> None:
    peer, voice = make_peer(fake.url), make_voice()
    await peer.session(fake.api_key, player_id="listener")
    await voice.start(peer)
    start = time.monotonic()
    await peer.emit("text", {"text": "tell me something"})
    await peer.emit("text", {"text": "and then something else"})
    deadline = time.monotonic() + 2 * BOUND
    while time.monotonic() < deadline:  # until the second reply was shown, and then idle
        finals = [p["message_id"] for p in peer.payloads("bot_response") if p.get("is_final")]
        seen = [a for _, who, a in voice.attributes if who.startswith("bot-")]
        second = [i for i, a in enumerate(seen) if len(finals) == 2 and a.get("estuary.message_id") == finals[1]]
        if second and any(a.get("estuary.state") == "idle" for a in seen[second[0] :]):
            break
        await asyncio.sleep(0.05)
    finals = [p["message_id"] for p in peer.payloads("bot_response") if p.get("is_final")]
    metadata = [p["message_id"] for p in peer.payloads("bot_voice")]
    assert metadata == finals, (metadata, finals)
    timeline = [
        (round(t - start, 2), a.get("estuary.state"), a.get("estuary.message_id")) for t, _, a in voice.attributes
    ]
    # Under load LiveKit may deliver only the latest of quick attribute updates, so a speaking spell
    # can go unseen; what is seen must still be the replies in order, never back to an earlier one.
    speaking = runs([str(m) for _, state, m in timeline if state == "speaking"])
    assert speaking and all(m in finals for m in speaking), timeline
    assert [finals.index(m) for m in speaking] == sorted({finals.index(m) for m in speaking}), timeline
    assert speaking[-1] == finals[-1] and timeline[-1][1:] == ("idle", None), timeline
    assert voice.bot().attributes.get("estuary.message_id", "") == ""
