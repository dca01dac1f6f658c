"""The exploration: hypothesis runs the state machine in small batches until the budget is spent.

A finding (a broken invariant) is shrunk by hypothesis, then step by step (``_fewer_steps``), and
its steps are replayed once: it stands when they break the same requirement again, else it is
reported as flaky. Exploring goes on with that requirement's check off, so one run can find several
requirements broken.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, reproduce_failure
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import DidNotReproduce, Flaky
from hypothesis.internal.conjecture import engine as conjecture_engine
from hypothesis.stateful import run_state_machine_as_test

from conformance.explore.machine import Breach, machine_class, run_steps
from conformance.explore.requirements import EXPLORED
from conformance.explore.world import ExplorationStopped, ExplorerError, World
from pytest_estuary.explore_replay import ExploreReplay

__all__ = ["BATCH_EXAMPLES", "STEPS_PER_SEQUENCE", "Exploration", "Finding", "explore", "replay_finding"]

BATCH_EXAMPLES = 25  # sequences per hypothesis run (the world also checks the budget before each step)
SHRINK_FACTOR = 2  # shrinking a finding may take twice the exploring budget (LK-9's tries cost 5 s each)
# Of that, hypothesis' shrinker's share (it lowers arguments too: a quarter, 30 s, went mostly into
# 2-step findings, at 3 s a try); deleting steps (_fewer_steps) has the rest.
HYPOTHESIS_SHRINK_SHARE = 0.1
# Past budget x (1 + SHRINK_FACTOR) + HARD_SLACK no sequence or step starts: a batch or a shrink
# that will not end (a fresh-clone run once saw one spin past a 600 s bound) cannot hold the run.
HARD_SLACK = 60.0
STEPS_PER_SEQUENCE = 20  # reaches any documented state; long enough for three-step patterns (steps are deleted fast)


@dataclass
class Finding:
    """A requirement broken by a shrunk sequence; ``flaky`` says why it is not a FAIL."""

    requirement: str
    message: str
    steps: list[dict[str, Any]]
    replay: str | None
    flaky: str | None = None


@dataclass
class Exploration:
    """What one exploration did and found."""

    seed: int
    findings: dict[str, Finding] = field(default_factory=dict)
    sequences: int = 0
    steps: int = 0
    seconds: float = 0.0
    blocks: dict[str, str] = field(default_factory=dict)
    exercised: set[str] = field(default_factory=set)
    first_finding_after: dict[str, float] = field(default_factory=dict)
    first_reached_after: dict[str, float] = field(default_factory=dict)  # requirement → seconds to exercise it
    unsteady: int = 0  # hypothesis runs that ended on a sequence the server answered differently twice
    overran: bool = False  # stopped at the hard bound (see HARD_SLACK), with what it had found

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def _settings(examples: int, database: bool, shrink: bool = True) -> hypothesis_settings:
    extra: dict[str, Any] = {} if database else {"database": None}
    return hypothesis_settings(
        max_examples=examples,
        stateful_step_count=STEPS_PER_SEQUENCE,
        deadline=None,  # network round trips: their bounds are the protocol's, checked by the invariants
        print_blob=False,  # a finding's replay line is its steps (pytest_estuary.explore_replay)
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.reuse, Phase.generate, *((Phase.shrink,) if shrink else ())),
        **extra,
    )


@contextlib.contextmanager
def _shrinking_within(seconds: float) -> Iterator[None]:
    """hypothesis has no public setting for its shrink time (300 s): the budget bounds it here."""
    saved = conjecture_engine.MAX_SHRINKING_SECONDS
    conjecture_engine.MAX_SHRINKING_SECONDS = max(1, int(seconds))
    try:
        yield
    finally:
        conjecture_engine.MAX_SHRINKING_SECONDS = saved


@contextlib.contextmanager
def _without_mutations() -> Iterator[None]:
    """hypothesis follows each new sequence with up to five near-copies of it (its mutator copies
    one part over another). Here a sequence costs a second or more of network time: in a minute of
    ``join_twice_two_bots``, 68 sequences ran in 29 distinct rule orders. Without the copies, 7 of 10
    seeds found that setting within the minute, 4 of 10 with them. No public setting turns it off."""
    runner = conjecture_engine.ConjectureRunner
    saved = runner.__dict__.get("generate_mutations_from")
    if saved is None:  # another hypothesis: explore as it generates (tests/explore pins this one)
        yield
        return
    runner.generate_mutations_from = lambda self, data: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        runner.generate_mutations_from = saved  # type: ignore[method-assign]


def _breach_in(exc: BaseException) -> Breach | None:
    if isinstance(exc, Breach):
        return exc
    for inner in getattr(exc, "exceptions", ()):  # hypothesis' FlakyFailure is an ExceptionGroup
        found = _breach_in(inner)
        if found is not None:
            return found
    return None


def _stopped(exc: BaseException) -> ExplorationStopped | None:
    """The stop in ``exc``, which hypothesis may have wrapped in its own groups."""
    if isinstance(exc, ExplorationStopped):
        return exc
    for inner in (*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__):
        found = _stopped(inner) if inner is not None else None
        if found is not None:
            return found
    return None


def replay_finding(world: World, replay: ExploreReplay) -> Breach | None:
    """Run the one sequence ``replay`` names; the breach of its requirement when it happens again."""
    assert replay.requirement is not None
    if replay.steps:
        return _replayed_steps(world, replay)
    assert replay.version is not None and replay.blob is not None
    machine = machine_class(world, frozenset({replay.requirement}))
    reproduce_failure(replay.version, replay.blob.encode("ascii"))(machine)
    bounds = world.stop_at, world.hard_deadline
    world.stop_at = world.hard_deadline = float("inf")  # one sequence: its steps are bounded
    try:
        run_state_machine_as_test(machine, settings=_settings(1, database=False))
    except DidNotReproduce:
        return None
    except Exception as exc:  # another failure is not this finding
        breach = _breach_in(exc)
        return breach if breach is not None and breach.requirement == replay.requirement else None
    finally:
        world.stop_at, world.hard_deadline = bounds
    return None


def explore(
    world: World,
    *,
    budget: float,
    examples: int | None,
    seed: int | None,
    database: bool,
    first_only: bool = False,
    shrink: bool = True,
) -> Exploration:
    """Explore until ``budget`` seconds (or ``examples`` sequences) are spent, or (``first_only``,
    pytest's ``-x``) until the first finding. ``shrink=False`` (the bench's time to a first finding)
    reports findings unshrunk and unreplayed."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    result = Exploration(seed=seed)
    rng = random.Random(seed)
    started = time.monotonic()
    deadline = started + budget
    world.stop_at, world.hard_deadline = deadline, deadline + SHRINK_FACTOR * budget + HARD_SLACK
    checked = set(EXPLORED)
    sequences_left = examples if examples is not None else None
    with _shrinking_within(SHRINK_FACTOR * budget * HYPOTHESIS_SHRINK_SHARE), _without_mutations():
        while checked and time.monotonic() < deadline and (sequences_left is None or sequences_left > 0):
            batch = BATCH_EXAMPLES if sequences_left is None else min(BATCH_EXAMPLES, sequences_left)
            machine = machine_class(world, frozenset(checked))
            hypothesis.seed(rng.getrandbits(64))(machine)
            before = world.sequences
            world.breached = False
            try:
                run_state_machine_as_test(machine, settings=_settings(batch, database, shrink))
            except Exception as exc:
                breach = _breach_in(exc)
                if breach is None:
                    stopped = _stopped(exc)
                    if stopped is not None:
                        result.overran = stopped.overrun
                        break
                    if isinstance(exc, Flaky):  # the server answered a replayed sequence differently
                        result.unsteady += 1  # (preconditions follow its answers): not a finding
                        continue
                    raise
                first = world.first_breach.get(breach.requirement, time.monotonic())
                result.first_finding_after[breach.requirement] = first - started
                result.findings[breach.requirement] = (
                    _judge(world, breach, exc)
                    if shrink
                    else Finding(breach.requirement, breach.message, breach.steps, None)
                )
                checked.discard(breach.requirement)
                if first_only:
                    break
            if sequences_left is not None:
                sequences_left -= world.sequences - before
    result.seconds = time.monotonic() - started
    result.sequences, result.steps = world.sequences, world.total_steps
    result.blocks, result.exercised = dict(world.blocks), world.exercised
    result.first_reached_after = {r: at - started for r, at in world.first_exercised.items() if at >= started}
    return result


def _judge(world: World, breach: Breach, exc: BaseException) -> Finding:
    if breach is not exc:
        # hypothesis ran the sequence again while shrinking and it passed: a finding that depends
        # on timing (a bot's join racing a leave). One replay of its steps decides.
        replay = ExploreReplay(requirement=breach.requirement, steps=breach.calls)
        try:
            again = _replayed_steps(world, replay)
        except ExplorerError:
            again = None
        if again is None:
            flaky = "hypothesis saw the sequence pass when it ran it again while shrinking, and so did a replay"
            return Finding(breach.requirement, breach.message, breach.steps, replay.line(), flaky)
        breach = again
    shortest = _fewer_steps(world, breach)
    replay = ExploreReplay(requirement=breach.requirement, steps=shortest.calls)
    unfinished = None
    try:
        again = _replayed_steps(world, replay)
    except ExplorerError as exc:
        again, unfinished = None, str(exc)
    finding = Finding(breach.requirement, (again or shortest).message, (again or shortest).steps, replay.line())
    if again is None:
        outcome = f"could not finish ({unfinished})" if unfinished else "did not break it again"
        finding.flaky = f"its shrunk sequence, replayed, {outcome}"
    return finding


def _fewer_steps(world: World, breach: Breach) -> Breach:
    """Delete steps while what is left still breaks the requirement: first runs of half the
    sequence, a quarter, … (a finding of 15 steps often needs 3 of them), then single steps, the
    last first, then two neighbours at a time (a socket opened and closed again), until none can go.
    hypothesis' shrinker also lowers every argument, and each of its tries that still breaks waits
    out a bound (3 s for a reply, 5 s for a room), so its share of the budget can end with steps to
    spare; each try here that still breaks waits out that bound too, hence long runs first."""
    checked = frozenset({breach.requirement})
    best = breach
    world.breached = True  # past the budget's end, bounded by the hard deadline
    try:
        width = len(best.calls) // 2
        while width > 1:
            best, deleted = _without_runs(world, checked, best, width, step=width)
            if not deleted:
                width //= 2
        width = 1
        while width <= 2:
            best, deleted = _without_runs(world, checked, best, width, step=1)
            width = 1 if deleted else width + 1  # after any deletion, single steps again
    except ExplorationStopped:
        pass
    return best


def _without_runs(
    world: World, checked: frozenset[str], best: Breach, width: int, *, step: int
) -> tuple[Breach, bool]:
    """One pass, the last run first: each run of ``width`` steps (starting every ``step`` steps)
    that can go while the rest still breaks the requirement is gone. Returns the shortest breach
    and whether any run went."""
    deleted = False
    for start in reversed(range(0, len(best.calls) - width + 1, step)):
        if start + width > len(best.calls):
            continue
        try:
            got = run_steps(world, checked, [*best.calls[:start], *best.calls[start + width :]])
        except ExplorerError:  # a try the harness could not finish is no shorter finding
            continue
        if got is not None:
            best, deleted = got, True
    return best, deleted


def _replayed_steps(world: World, replay: ExploreReplay) -> Breach | None:
    assert replay.requirement is not None
    bounds = world.stop_at, world.hard_deadline
    world.stop_at = world.hard_deadline = float("inf")  # one sequence: its steps are bounded
    try:
        return run_steps(world, frozenset({replay.requirement}), replay.steps)
    finally:
        world.stop_at, world.hard_deadline = bounds
