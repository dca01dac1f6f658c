"""LK-5 holds for the fake itself: a bot that cannot come in answers ``livekit_error`` within 5 s of
``livekit_join``, never a late ``livekit_ready``; the bot that comes in late leaves with its room.

The bot worker is frozen for real (SIGSTOP), as a starved machine freezes it. The explorer met such a
join once, unanswered past 5 s; the fake then waited for its bot up to the worker's 15 s bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import api

from fake_server import FakeEstuaryServer, LiveKitConfig
from fake_server.livekit_voice import READY_WITHIN
from pytest_estuary.livekit_server import LiveKitCredentials

LK_5_BOUND = 5.0
GONE_WITHIN = 25.0  # the frozen join's own bound (15 s) and a leave


@pytest.fixture
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


async def _rooms(creds: LiveKitCredentials, room: str) -> list[str]:
    lk = api.LiveKitAPI(creds.http_url, creds.api_key, creds.api_secret)
    try:
        listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        return [r.name for r in listed.rooms if r.num_participants > 0]
    finally:
        await lk.aclose()


@pytest.mark.asyncio
async def test_a_bot_that_cannot_join_is_livekit_error_within_the_bound(
    fake: FakeEstuaryServer, make_peer: Any, livekit_server: LiveKitCredentials
) -> None:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    await peer.emit("text", {"text": "warm up", "textOnly": True})  # the worker is up before it freezes
    await peer.wait("bot_response", predicate=lambda p: p.get("is_final") is True)
    worker = fake.engine.bots.pid
    assert worker is not None
    os.kill(worker, signal.SIGSTOP)
    try:
        await peer.emit("livekit_token")
        room = (await peer.wait("livekit_token"))["room"]
        joined = time.monotonic()
        await peer.emit("livekit_join", {"room": room})
        error = await peer.wait("livekit_error", timeout=LK_5_BOUND)
        answered = time.monotonic() - joined
    finally:
        os.kill(worker, signal.SIGCONT)
    assert READY_WITHIN - 0.5 <= answered <= LK_5_BOUND, answered
    assert error["error"].startswith("the bot could not join room "), error  # the name abbreviated, as ids are
    assert error["error"].endswith(f": no bot within {READY_WITHIN:g} s"), error
    assert not peer.payloads("livekit_ready")
    deadline = time.monotonic() + GONE_WITHIN
    while await _rooms(livekit_server, room):  # the late bot left, its room with it
        assert time.monotonic() < deadline, f"room {room} still has participants {GONE_WITHIN:.0f} s on"
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    assert not peer.payloads("livekit_ready"), "a late livekit_ready after the error"
    assert await peer.text_round_trip() < LK_5_BOUND  # the session goes on
