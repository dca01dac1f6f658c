"""LK-9's "one live room per session", over a real fake server and LiveKit: a new token starts the
session's new voice, so the rooms of its earlier tokens must be gone within 5 s. Seen through
RoomService when the keys are known (embedded mode), else through the explorer's own connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.explore.bounds import Bounds
from conformance.explore.machine import run_steps
from conformance.explore.world import LoopThread, World
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.explore_replay import parse_replay
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget

# a LiveKit start (with or without the explorer's room connection), a second join, a new token
START_JOIN_TOKEN = "LK-9:open_socket(slot=p1,style=connect);livekit_start(slot=p1,connect={connect},form=0);livekit_join(slot=p1,form=0);livekit_token(slot=p1,form=0)"  # noqa: E501


@pytest.fixture(scope="module")
def module_fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    server = FakeEstuaryServer(
        livekit=LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(module_fake: FakeEstuaryServer) -> Iterator[FakeEstuaryServer]:
    """The module's fake, good again after each test (every sequence has a player of its own)."""
    try:
        yield module_fake
    finally:
        module_fake.misbehave(join_twice_two_bots=False)


def _world(fake: FakeEstuaryServer, keys: LiveKitCredentials | None) -> World:
    target = EstuaryTarget(fake.url, fake.api_key, "explore-character", "explore-player", "fake", 3.0)
    return World(target, Bounds.for_timeout(3.0), LoopThread(), keys)


def _run(world: World, connect: bool) -> str | None:
    try:
        breach = run_steps(world, frozenset({"LK-9"}), parse_replay(START_JOIN_TOKEN.format(connect=connect)).steps)
        return None if breach is None else breach.message
    finally:
        world.loop.close()


def test_a_new_token_ends_the_earlier_room_on_the_good_fake(
    fake: FakeEstuaryServer, livekit_server: LiveKitCredentials
) -> None:
    assert _run(_world(fake, livekit_server), connect=True) is None


@pytest.mark.parametrize("seen_by", ["RoomService", "the explorer's connection"])
def test_an_earlier_room_kept_after_a_new_token_breaks_lk_9(
    fake: FakeEstuaryServer, livekit_server: LiveKitCredentials, seen_by: str
) -> None:
    # join_twice_two_bots: the second join's stray bot keeps the first room alive past the new token
    fake.misbehave(join_twice_two_bots=True)
    embedded = seen_by == "RoomService"
    message = _run(_world(fake, livekit_server if embedded else None), connect=not embedded)
    assert message is not None
    assert "Expected: at most one live room per session" in message, message
    assert "still live 5.0 s after the new token" in message, message
