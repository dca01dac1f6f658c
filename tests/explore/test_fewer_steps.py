"""The explorer's own step deletion after hypothesis' shrinking: runs of half the steps, a quarter, …,
then single steps, then neighbouring pairs (a socket opened and closed again), until no deletion
still breaks the requirement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest

from conformance.explore import runner
from conformance.explore.bounds import Bounds
from conformance.explore.machine import Breach, breach_type
from conformance.explore.world import LoopThread, World
from pytest_estuary.explore_replay import ReplayStep
from pytest_estuary.targets import EstuaryTarget

TARGET = EstuaryTarget("http://127.0.0.1:1", "key-0123456789", "character", "player", "fake", 3.0)
LK9 = breach_type("LK-9")


def _steps(*names: str) -> list[ReplayStep]:
    return [ReplayStep(name) for name in names]


def _server_that_keeps_a_room_after_token_then_leave(
    world: World, checked: frozenset[str], steps: Sequence[ReplayStep]
) -> Breach | None:
    """Stands in for a server run: two sockets at most, none closed that is not open (the
    preconditions), and a token then a leave with a socket open breaks LK-9."""
    open_sockets, token = 0, False
    for n, step in enumerate(steps, 1):
        if step.rule == "open":
            if open_sockets == 2:
                return None  # cannot run: the sequence is over without a finding
            open_sockets += 1
        elif step.rule == "close":
            if open_sockets == 0:
                return None
            open_sockets -= 1
        elif open_sockets == 0:
            return None
        elif step.rule == "token":
            token = True
        elif step.rule == "leave" and token:
            return LK9("room kept", [{"n": i} for i in range(1, n + 1)], steps[:n])
    return None


def test_single_steps_then_pairs_go_until_none_can(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[int] = []

    def run(world: World, checked: frozenset[str], steps: Sequence[ReplayStep]) -> Breach | None:
        tried.append(len(steps))
        return _server_that_keeps_a_room_after_token_then_leave(world, checked, steps)

    monkeypatch.setattr(runner, "run_steps", run)
    found = _steps("open", "close", "open", "open", "text", "close", "token", "leave", "text")
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    shortest = runner._fewer_steps(world, LK9("room kept", [], found[:8]))
    assert [s.rule for s in shortest.calls] == ["open", "token", "leave"]
    assert world.breached  # it runs past the budget, as shrinking does
    assert len(tried) < 4 * len(found)


def test_long_findings_lose_runs_of_steps_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every try that still breaks waits out a bound (5 s for LK-9): deleting one step at a time
    took 13 such tries for these 16 steps."""
    breaking: list[int] = []

    def run(world: World, checked: frozenset[str], steps: Sequence[ReplayStep]) -> Breach | None:
        got = _server_that_keeps_a_room_after_token_then_leave(world, checked, steps)
        if got is not None:
            breaking.append(len(steps))
        return got

    monkeypatch.setattr(runner, "run_steps", run)
    found = _steps("open", *["text"] * 6, "token", *["text"] * 7, "leave")
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    shortest = runner._fewer_steps(world, LK9("room kept", [], found))
    assert [s.rule for s in shortest.calls] == ["open", "token", "leave"]
    assert len(breaking) <= 7, breaking


def test_a_finding_hypothesis_saw_pass_again_stands_when_its_replay_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing can make hypothesis' own re-run pass (a bot's join racing a leave): one replay of the
    steps decides between a FAIL, shrunk as any other, and flaky."""
    runs = {"left": 0}

    def run(world: World, checked: frozenset[str], steps: Sequence[ReplayStep]) -> Breach | None:
        if runs["left"] == 0:
            return None
        runs["left"] -= 1
        return _server_that_keeps_a_room_after_token_then_leave(world, checked, steps)

    monkeypatch.setattr(runner, "run_steps", run)
    found = _steps("open", "text", "token", "leave")
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    breach = LK9("room kept", [], found)
    wrapped = ExceptionGroup("hypothesis: flaky", [breach])

    runs["left"] = 0  # the replay passes too
    flaky = runner._judge(world, breach, wrapped)
    assert flaky.flaky and "and so did a replay" in flaky.flaky
    assert flaky.replay is not None and "text()" in flaky.replay  # the steps as found, to try again

    runs["left"] = 100  # the replay breaks it: shrunk, replayed, a finding
    found_again = runner._judge(world, breach, wrapped)
    assert found_again.flaky is None
    assert found_again.replay == "LK-9:open();token();leave()"
