"""The bot warms up on ``livekit_token`` (LK-11), and a warm bot never outlives its use.

Seen from outside: raw Socket.IO peers, and livekit-server's own participant and room lists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from livekit import api, rtc

from conformance.handshake import livekit_handshake, request_token
from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget

pytestmark = pytest.mark.asyncio
BOUND = 5.0
PLAYER = "warm-player"


@pytest.fixture(scope="module", params=[True, False], ids=["warmup", "no-warmup"])
def fake(request: pytest.FixtureRequest, livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config, bot_warmup=request.param) as server:
        yield server


@pytest_asyncio.fixture
async def peer(fake: FakeEstuaryServer) -> AsyncIterator[RawPeer]:
    fake.reset()
    peer = RawPeer(EstuaryTarget(fake.url, fake.api_key, "c", PLAYER, "fake", timeout=BOUND))
    await peer.session(player_id=PLAYER)
    yield peer
    await peer.close()


@pytest_asyncio.fixture
async def lk(livekit_server: LiveKitCredentials) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as client:
        yield client


async def identities(lk: api.LiveKitAPI, room: str) -> list[str]:
    listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return sorted(p.identity for p in listed.participants)


async def wait_until(what: str, check: Callable[[], Awaitable[object]], bound: float = BOUND) -> None:
    """Poll the async ``check`` until it returns True; fail naming ``what`` and the last value."""
    deadline, last = time.monotonic() + bound, None
    while time.monotonic() < deadline:
        last = await check()
        if last is True:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not within {bound:.0f} s; last seen: {last!r}")


async def test_the_bot_is_in_the_room_before_livekit_join_only_with_warmup(
    fake: FakeEstuaryServer, peer: RawPeer, lk: api.LiveKitAPI
) -> None:
    reply, _ = await request_token(peer, timeout=BOUND)
    if fake.settings.bot_warmup:
        await wait_until("the warm bot in the token's room", lambda: _has_bot(lk, reply["room"]))
    else:
        await asyncio.sleep(1.0)
        assert await identities(lk, reply["room"]) == []


async def test_join_after_warmup_is_ready_with_a_publishing_bot(
    fake: FakeEstuaryServer, peer: RawPeer, lk: api.LiveKitAPI
) -> None:
    room = RtcPeer()
    try:
        done = await livekit_handshake(peer, room, timeout=BOUND)
        bot = await room.wait_for_bot_track(timeout=BOUND)
        assert bot.identity.startswith("bot-")
        # a standby bot is told its session after the handshake; the attribute follows on its own
        await wait_until("the bot's session attribute", lambda: _attribute(bot, "estuary.session_id"))
        assert bot.attributes.get("estuary.state") == "idle"  # from the bot's token, LK-10
        assert await identities(lk, done.room) == sorted([bot.identity, PLAYER])
    finally:
        await room.close()


async def test_a_second_token_before_join_deletes_the_first_warm_room(
    fake: FakeEstuaryServer, peer: RawPeer, lk: api.LiveKitAPI
) -> None:
    first, _ = await request_token(peer, timeout=BOUND)
    second, _ = await request_token(peer, timeout=BOUND)
    assert first["room"] != second["room"]
    await wait_until("the first room gone", lambda: _gone(fake, first["room"]))
    if fake.settings.bot_warmup:
        await wait_until("the warm bot in the second room", lambda: _has_bot(lk, second["room"]))


@pytest.mark.parametrize("ending", ["livekit_leave", "disconnect", "voice_timeout"])
async def test_a_token_never_joined_leaves_no_room_and_no_bot(
    fake: FakeEstuaryServer, peer: RawPeer, lk: api.LiveKitAPI, ending: str
) -> None:
    reply, _ = await request_token(peer, timeout=BOUND)
    if fake.settings.bot_warmup:
        await wait_until("the warm bot in the room", lambda: _has_bot(lk, reply["room"]))
    if ending == "livekit_leave":
        await peer.emit("livekit_leave", None)
    elif ending == "disconnect":
        await peer.close()
    else:
        fake.trigger_voice_timeout(PLAYER)
    await wait_until("the room gone", lambda: _gone(fake, reply["room"]))
    assert await identities(lk, reply["room"]) == []


async def _has_bot(lk: api.LiveKitAPI, room: str) -> bool | list[str]:
    people = await identities(lk, room)
    return any(p.startswith("bot-") for p in people) or people


async def _gone(fake: FakeEstuaryServer, room: str) -> bool | list[str]:
    rooms = await asyncio.to_thread(fake.live_rooms)
    return room not in rooms or rooms


async def _attribute(participant: rtc.RemoteParticipant, name: str) -> bool | dict[str, str]:
    return participant.attributes.get(name, "").startswith("sess-") or dict(participant.attributes)
