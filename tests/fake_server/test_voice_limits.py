"""LiveKit voice under misuse: one live room per session, whatever a client asks for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials

BOUND = 30.0


@pytest.fixture(scope="module")
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


@pytest.mark.asyncio
async def test_a_token_flood_leaves_one_room_per_session(fake: FakeEstuaryServer, make_peer: Any) -> None:
    fake.reset()
    others = set(await asyncio.to_thread(fake.live_rooms))  # the LiveKit server is shared with other tests
    peer = make_peer(fake.url)
    await peer.session(fake.api_key, player_id="flooder")
    requests = 8
    for _ in range(requests):
        await peer.emit("livekit_token", None)
    deadline = time.monotonic() + BOUND
    while len(peer.payloads("livekit_token")) < requests and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    replies = peer.payloads("livekit_token")
    assert len(replies) == requests, f"{len(replies)} of {requests} token replies within {BOUND:.0f} s"
    await asyncio.sleep(0.5)  # the last warm bot's join settles
    rooms = set(await asyncio.to_thread(fake.live_rooms)) - others
    assert rooms <= {replies[-1]["room"]}, f"rooms alive: {rooms}; the last token's: {replies[-1]['room']}"
