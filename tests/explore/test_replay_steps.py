"""A finding's steps line, run without hypothesis: a step the explorer cannot run is named, and a
step whose precondition does not hold ends the replay without a finding."""

from __future__ import annotations

from typing import cast

import pytest

from conformance.explore.bounds import Bounds
from conformance.explore.machine import run_steps
from conformance.explore.world import ExplorerError, LoopThread, World
from pytest_estuary.explore_replay import ReplayStep, parse_replay
from pytest_estuary.targets import EstuaryTarget

TARGET = EstuaryTarget("http://127.0.0.1:1", "key-0123456789", "character", "player", "fake", 3.0)


def _world() -> World:
    return World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("TEXT-1:open_socket(slot=p1,style=connect);dance(slot=p1)", r"step 2 names no rule .*: 'dance' \(its rules: "),
        ("TEXT-1:open_socket(slot=p1)", r"step 1: open_socket takes the arguments \['slot', 'style'\], got \['slot'\]"),
        ("TEXT-1:text(slot=p1,form=0,loud=True)", r"text takes .*\['form', 'slot'\], got \['form', 'loud', 'slot'\]"),
    ],
)  # fmt: skip
def test_a_step_the_explorer_cannot_run_is_named(line: str, says: str) -> None:
    world = _world()
    with pytest.raises(ExplorerError, match=says):
        run_steps(world, frozenset({"TEXT-1"}), parse_replay(line).steps)
    assert world.sequences == 0  # refused before any socket opened


def test_a_step_whose_precondition_does_not_hold_ends_the_replay() -> None:
    loop = LoopThread()
    world = World(TARGET, Bounds.for_timeout(3.0), loop)
    try:  # text needs an authenticated socket, and none was opened
        assert run_steps(world, frozenset({"TEXT-1"}), [ReplayStep("text", (("slot", "p1"), ("form", 0)))]) is None
    finally:
        loop.close()
    assert world.steps == [] and world.sequences == 1
