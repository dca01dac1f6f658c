"""kill -9 of the bot worker mid-session: a new worker at once, each LiveKit session's bot back in
its room within 2 s (same identity), the standby refilled."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials

BOUND = 10.0
BACK_WITHIN = 2.0


@pytest.fixture
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


async def until(condition: Any, bound: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > bound:
            raise AssertionError(f"{what}: not within {bound:.1f} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.asyncio
async def test_killed_worker_the_bots_come_back_within_2_s(
    fake: FakeEstuaryServer, make_peer: Any, make_voice: Any
) -> None:
    peers, voices = [make_peer(fake.url), make_peer(fake.url)], [make_voice(), make_voice()]
    for i, (peer, voice) in enumerate(zip(peers, voices, strict=True)):
        await peer.session(fake.api_key, player_id=f"player-{i}")
        await voice.start(peer)
        await until(lambda v=voice: v.bot_tracks, BOUND, "the bot's track")
    identities = [voice.bot().identity for voice in voices]
    await until(lambda: fake.engine.bots.spare_pid is not None, BOUND, "the spare worker")
    worker = fake.engine.bots.pid
    assert worker is not None
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    for voice in voices:  # back = its track published in the room; our subscribing to it is our business
        back = await until(lambda v=voice: [t for t in v.bot_publications if t > killed], BOUND, "the bot back")
        assert back <= BACK_WITHIN, f"the bot came back {back:.2f} s after the kill"
        await until(lambda v=voice: [t for t in v.bot_tracks if t > killed], BOUND, "the bot's new track")
    assert [voice.bot().identity for voice in voices] == identities
    assert fake.engine.bots.pid not in (None, worker)
    for peer, voice in zip(peers, voices, strict=True):  # the new bots speak and hear
        start = time.monotonic()
        await peer.emit("text", {"text": "are you back?"})
        await until(lambda v=voice, s=start: v.loud_since(s) >= 0.3, BOUND, "the bot's voice after the kill")
        assert not peer.payloads("livekit_error")
    standby = fake.engine.standby
    assert standby is not None
    await until(lambda: standby.joining.done(), BOUND, "the new standby bot")
    assert standby.joining.result().alive
