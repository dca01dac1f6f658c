"""Two choices of the explorer's rules, over a real fake server and LiveKit: a socket is closed only
while another stays open (closing the last one threw away what a sequence had built), and
``livekit_leave`` goes to a socket that holds a room when one does (a client leaves the voice it
started, LIFE-2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.explore.bounds import Bounds
from conformance.explore.machine import run_steps
from conformance.explore.world import LoopThread, World
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.explore_replay import ReplayStep, parse_replay
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget


@pytest.fixture
def world(livekit_server: LiveKitCredentials) -> Iterator[World]:
    fake = FakeEstuaryServer(
        livekit=LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    ).start()
    loop = LoopThread()
    target = EstuaryTarget(fake.url, fake.api_key, "explore-character", "explore-player", "fake", 3.0)
    explored = World(target, Bounds.for_timeout(3.0), loop, livekit_server)
    try:
        yield explored
    finally:
        try:
            explored.reset()
        finally:
            loop.close()
            fake.stop()


def _actions(world: World, line: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The steps that ran, as labelled (the socket each went to); a sequence's end clears them."""
    ran: list[str] = []
    start_step = world.start_step

    def noted(action: str, call: ReplayStep) -> None:
        ran.append(action)
        start_step(action, call)

    monkeypatch.setattr(world, "start_step", noted)
    assert run_steps(world, frozenset({"LK-9"}), parse_replay(line).steps) is None  # the good fake
    return ran


def test_the_last_open_socket_is_not_closed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    actions = _actions(world, "LK-9:open_socket(slot=p1,style=connect);close_socket(slot=p1)", monkeypatch)
    assert [a.split("(")[0] for a in actions] == ["open_socket"]  # the close did not hold: the replay ended


def test_a_socket_is_closed_while_another_stays_open(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    line = "LK-9:open_socket(slot=p1,style=connect);open_socket(slot=p2,style=connect);close_socket(slot=p1)"
    assert _actions(world, line, monkeypatch)[-1] == "close_socket(p1)"


def test_livekit_leave_goes_to_the_socket_holding_a_room(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    line = (
        "LK-9:open_socket(slot=p1,style=connect);open_socket(slot=p2,style=connect);"
        "livekit_token(slot=p1,form=0);livekit_leave(slot=p2,form=0)"
    )
    assert _actions(world, line, monkeypatch)[-1].startswith("livekit_leave(p1,")


def test_livekit_leave_without_a_room_goes_to_the_socket_drawn(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    line = "LK-9:open_socket(slot=p1,style=connect);open_socket(slot=p2,style=connect);livekit_leave(slot=p2,form=0)"
    assert _actions(world, line, monkeypatch)[-1].startswith("livekit_leave(p2,")
