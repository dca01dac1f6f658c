"""Each misbehaviour setting, seen by raw peers (raw Socket.IO + raw livekit.rtc, not our client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from conformance.checks import Stopwatch
from conformance.handshake import livekit_handshake, request_token
from conformance.peer import RawPeer, WireTimeout
from conformance.rtc_peer import RtcPeer
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary import audio
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


@pytest_asyncio.fixture
async def peers(fake: FakeEstuaryServer) -> AsyncIterator[tuple[RawPeer, RtcPeer]]:
    fake.reset()
    target = EstuaryTarget(fake.url, fake.api_key, "c", "raw", "fake", timeout=5.0)
    peer, room = RawPeer(target), RtcPeer()
    yield peer, room
    await room.close()
    await peer.close()


async def test_no_bot_means_an_empty_room_at_ready(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, room = peers
    fake.misbehave(no_bot=True)
    await peer.session()
    await livekit_handshake(peer, room, timeout=5.0)
    await asyncio.sleep(0.5)
    assert not room.bots()


async def test_deaf_bot_never_transcribes(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, room = peers
    fake.misbehave(bot_deaf=True)
    await peer.session()
    await livekit_handshake(peer, room, timeout=5.0)
    room.say(audio.utterance(duration=0.6, tail=0.6))
    await peer.quiet("stt_response", within=2.5)


async def test_silent_bot_replies_in_text_only(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, room = peers
    fake.misbehave(bot_silent=True)
    await peer.session()
    await livekit_handshake(peer, room, timeout=5.0)
    bot = await room.wait_for_bot_track(timeout=5.0)
    watch = Stopwatch()
    await peer.emit("text", {"text": "say something"})
    await peer.wait("bot_response", predicate=lambda e: e.payload.get("is_final") is True, since=watch.start)
    await asyncio.sleep(1.5)
    assert audio.voiced_seconds(room.audio_from(bot.identity), 48000) == 0.0
    assert not peer.seen("bot_voice", since=watch.start)


async def test_drop_socket_at_a_chosen_event(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, _ = peers
    fake.misbehave(drop_socket_at="livekit_token")
    await peer.session()
    await peer.emit("livekit_token", None)
    await peer.wait("<disconnect>", timeout=5.0)
    assert not peer.seen("livekit_token")


async def test_delay_holds_the_reply(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, _ = peers
    fake.misbehave(delay={"livekit_token": 1.0})
    await peer.session()
    _, elapsed = await request_token(peer, timeout=5.0)
    assert 1.0 <= elapsed < 2.5, elapsed


@pytest.mark.parametrize("missing", ["token", "url", "room"])
async def test_token_reply_missing_a_field(
    fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer], missing: str
) -> None:
    peer, _ = peers
    fake.misbehave(token_reply_missing=missing)
    await peer.session()
    watch = Stopwatch()
    await peer.emit("livekit_token", None)  # not request_token(): that one checks the reply is whole
    reply = (await peer.wait("livekit_token", timeout=5.0, since=watch.start)).payload
    assert missing not in reply and len(reply) == 2


async def test_auth_always_fails(fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]) -> None:
    peer, _ = peers
    fake.misbehave(auth_always_fails=True)
    await peer.open(auth=peer.auth())
    event = await peer.wait("auth_error")
    assert event.payload["error"]
    with pytest.raises(WireTimeout):
        await peer.wait("session_info", timeout=0.5)


async def test_per_player_misbehaviour_leaves_others_alone(
    fake: FakeEstuaryServer, peers: tuple[RawPeer, RtcPeer]
) -> None:
    peer, _ = peers
    fake.misbehave(player_id="victim", livekit_disabled=True)
    await peer.session(player_id="victim")
    await peer.emit("livekit_token", None)
    await peer.quiet("livekit_token", within=1.0)
    other = RawPeer(peer.target, name="other")
    try:
        await other.session(player_id="someone-else")
        reply: dict[str, Any] = (await request_token(other, timeout=5.0))[0]
        assert reply["token"]
    finally:
        await other.close()
