"""The two places the explorer reaches into hypothesis' engine (no public setting exists for
either): they must act on the installed hypothesis, and undo themselves afterwards."""

from __future__ import annotations

from hypothesis.internal.conjecture import engine as conjecture_engine

from conformance.explore import runner


def test_the_mutator_is_off_while_exploring_and_back_afterwards() -> None:
    mutator = conjecture_engine.ConjectureRunner.__dict__.get("generate_mutations_from")
    assert mutator is not None, "this hypothesis has no generate_mutations_from: _without_mutations does nothing"
    with runner._without_mutations():
        assert conjecture_engine.ConjectureRunner.generate_mutations_from is not mutator
    assert conjecture_engine.ConjectureRunner.__dict__["generate_mutations_from"] is mutator


def test_the_shrink_time_is_bounded_while_exploring_and_back_afterwards() -> None:
    default = conjecture_engine.MAX_SHRINKING_SECONDS
    with runner._shrinking_within(12.5):
        assert conjecture_engine.MAX_SHRINKING_SECONDS == 12
    assert conjecture_engine.MAX_SHRINKING_SECONDS == default
