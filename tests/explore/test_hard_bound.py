"""The exploration's bounds: past its budget no sequence or step starts unless a finding is being
shrunk; past its hard bound none at all; the run ends with what it found."""

from __future__ import annotations

from typing import cast

import pytest

from conformance.explore import runner
from conformance.explore.bounds import Bounds
from conformance.explore.world import ExplorationStopped, LoopThread, World
from pytest_estuary.explore_replay import ReplayStep
from pytest_estuary.targets import EstuaryTarget

TARGET = EstuaryTarget("http://127.0.0.1:1", "key-0123456789", "character", "player", "fake", 3.0)


def test_no_sequence_starts_past_the_hard_bound() -> None:
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    world.hard_deadline = 0.0
    with pytest.raises(ExplorationStopped) as stopped:
        world.begin()
    assert stopped.value.overrun
    with pytest.raises(ExplorationStopped):
        world.start_step("text(p1)", ReplayStep("text"))


def test_past_the_budget_only_a_finding_being_shrunk_goes_on() -> None:
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    world.stop_at = 0.0
    with pytest.raises(ExplorationStopped) as stopped:
        world.begin()
    assert not stopped.value.overrun
    world.breached = True
    world.begin()
    world.start_step("text(p1)", ReplayStep("text"))


def test_an_exploration_past_its_hard_bound_stops_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # a bound already past when the first sequence starts: hypothesis gets the overrun from the
    # machine's first step, and the runner stops there instead of shrinking or going on
    monkeypatch.setattr(runner, "HARD_SLACK", -1000.0)
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    result = runner.explore(world, budget=30.0, examples=None, seed=1, database=False)
    assert result.overran
    assert result.findings == {}
    assert result.seconds < 30.0
