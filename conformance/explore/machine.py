"""The hypothesis state machine: rules are the client actions, one invariant method runs the checks.

Rules pick a socket by slot; when the slot drawn cannot take the action, the other one does, so a
drawn sequence keeps its meaning and shrinks well. Preconditions keep sequences meaningful
(``livekit_join`` only after a token reply, audio only while voice is on).

hypothesis itself turns a random subset of the rules off in each sequence (swarm testing), so long
runs of a few kinds of action come up often. A client's LiveKit start is also one rule: token, room
and join as three separate rules met in that order in about one sequence in fifty. The first socket
opens by a rule, not an ``@initialize`` step: hypothesis draws the sequence's rule switches at its
first rule, and a first rule the shrinker could delete left it unable to shorten the sequence.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Coroutine, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conformance.explore import actions
from conformance.explore.actions import FORMS, MALFORMED, RECORDINGS, UNKNOWN_FORMS, describe_form
from conformance.explore.invariants import INVARIANTS
from conformance.explore.world import SLOTS, ExplorerError, ExplorerPeer, World
from pytest_estuary.explore_replay import ReplayStep

__all__ = ["Breach", "breach_type", "machine_class", "run_steps"]

STEP_BOUND_FACTOR = 4  # an action waits at most a few of its bounds (connect, wait, probe per socket)


class Breach(AssertionError):
    """A broken invariant: the requirement, what was seen, and the sequence's steps (report JSON)."""

    requirement = ""

    def __init__(self, message: str, steps: list[dict[str, Any]], calls: Sequence[ReplayStep] = ()) -> None:
        super().__init__(f"{self.requirement}: {message}")
        self.message = message
        self.steps = steps
        self.calls = tuple(calls)  # the rules that ran, with their arguments: they replay it


@cache
def breach_type(requirement: str) -> type[Breach]:
    """One exception class per requirement: hypothesis tells failures apart by type, so it never
    shrinks one requirement's finding into another's."""
    return type(f"Breach[{requirement}]", (Breach,), {"requirement": requirement})


def _forms(event: str) -> st.SearchStrategy[int]:
    return st.integers(0, len(FORMS[event]) - 1)


def _naming(event: str, form: int, reply: str) -> str:
    """A form as a step shows it, with the reply it names."""
    return describe_form(FORMS[event][form]).replace("<a reply>", reply)


SLOT = st.sampled_from(SLOTS)
AUTH_STYLE = st.sampled_from(("connect", "event"))
RECORDING = st.integers(0, max(0, len(RECORDINGS) - 1))
BACK = st.integers(0, 3)  # which reply a message_id names: the newest (0) or one of the few before it
F = TypeVar("F", bound=Callable[..., None])


def step(**arguments: st.SearchStrategy[Any]) -> Callable[[F], F]:
    """``@rule`` that also notes which rule ran with which arguments (a finding's replay line)."""

    def accept(function: F) -> F:
        order = list(inspect.signature(function).parameters)

        @functools.wraps(function)
        def recorded(self: Any, **kwargs: Any) -> None:
            self.call = ReplayStep(function.__name__, tuple(sorted(kwargs.items(), key=lambda a: order.index(a[0]))))
            function(self, **kwargs)

        as_rule: Any = rule(**arguments)  # type: ignore[call-overload]  # its overloads want Bundle targets
        return cast(F, as_rule(recorded))

    return accept


def machine_class(world: World, checked: frozenset[str]) -> type[RuleBasedStateMachine]:
    """A state machine over ``world`` that checks the invariants of ``checked`` requirements."""

    class EstuaryExplorer(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.begin()
            world.watch = lambda: any(INVARIANTS[r](world) for r in INVARIANTS if r in checked)
            self._broken = False
            self.call = ReplayStep("")

        def teardown(self) -> None:
            try:
                if not self._broken:  # the checks still watching a bound may break an invariant yet
                    world.loop.run(world.settle(), world.bounds.longest() * STEP_BOUND_FACTOR, "last checks")
                    self._check()
            finally:
                world.reset()

        # -- helpers -------------------------------------------------------------------------

        def _pick(self, slot: str, usable: Callable[[ExplorerPeer], bool]) -> str:
            candidates = [
                s for s in (slot, *SLOTS) if s in world.peers and world.peers[s].live and usable(world.peers[s])
            ]
            return candidates[0]

        def _any(self, usable: Callable[[ExplorerPeer], bool] = lambda p: p.authenticated) -> bool:
            return any(p.live and usable(p) for p in world.peers.values())

        def _do(self, label: str, action: Coroutine[Any, Any, None]) -> None:
            try:
                world.start_step(label, self.call)
            except BaseException:  # the budget is spent: the action never runs, and says nothing of it
                action.close()
                raise
            bound = world.bounds.longest() * STEP_BOUND_FACTOR

            async def then_probe() -> None:
                await action
                await actions.probe(world)

            world.loop.run(then_probe(), bound, label)

        # -- sockets -------------------------------------------------------------------------

        @precondition(lambda self: len(world.peers) < len(SLOTS))
        @step(slot=SLOT, style=AUTH_STYLE)
        def open_socket(self, slot: str, style: str) -> None:
            free = next(s for s in (slot, *SLOTS) if s not in world.peers)
            self._do(f"open_socket({free}, auth={style})", actions.open_session(world, free, style))

        @precondition(lambda self: len(world.peers) > 1)
        @step(slot=SLOT)
        def close_socket(self, slot: str) -> None:
            chosen = slot if slot in world.peers else next(iter(world.peers))
            self._do(f"close_socket({chosen})", actions.close_socket(world, chosen))

        # -- text ----------------------------------------------------------------------------

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("text"))
        def text(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            self._do(f"text({s}, {FORMS['text'][form]!r})", actions.text(world, s, form))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("say_line"))
        def say_line(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            self._do(f"say_line({s}, {FORMS['say_line'][form]!r})", actions.say_line(world, s, form))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("client_interrupt"), back=BACK)
        def interrupt(self, slot: str, form: int, back: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = _naming("client_interrupt", form, f"<reply -{back}>")
            self._do(f"client_interrupt({s}, {shown})", actions.interrupt(world, s, form, back))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("client_interrupt"), ack=st.booleans())
        def barge_in(self, slot: str, form: int, ack: bool) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = _naming("client_interrupt", form, "<that reply>")
            then = ", then audio_playback_complete {message_id: <that reply>}" if ack else ""
            text = actions.BARGE_IN_TEXT["text"]
            self._do(
                f"barge_in({s}, text {text!r}, then client_interrupt {shown}{then})",
                actions.barge_in(world, s, form, ack),
            )

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("audio_playback_complete"), back=BACK)
        def playback_complete(self, slot: str, form: int, back: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = _naming("audio_playback_complete", form, f"<reply -{back}>")
            self._do(f"audio_playback_complete({s}, {shown})", actions.playback_complete(world, s, form, back))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, index=st.integers(0, len(MALFORMED) - 1))
        def malformed(self, slot: str, index: int) -> None:
            event, payload, needs_voice = MALFORMED[index]
            if needs_voice and not self._any(lambda p: p.authenticated and p.ws_voice):
                index, (event, payload, needs_voice) = 0, MALFORMED[0]
            s = self._pick(slot, lambda p: p.authenticated and (p.ws_voice or not needs_voice))
            self._do(f"malformed({s}, {event} {payload!r})", actions.malformed(world, s, index))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=st.integers(0, len(UNKNOWN_FORMS) - 1))
        def unknown_event(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = describe_form(UNKNOWN_FORMS[form])
            self._do(f"unknown_event({s}, {shown})", actions.unknown_event(world, s, form))

        # -- WebSocket voice -----------------------------------------------------------------

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("start_voice"))
        def start_voice(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = describe_form(FORMS["start_voice"][form])
            self._do(f"start_voice({s}, {shown})", actions.start_voice(world, s, form))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("stop_voice"))
        def stop_voice(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = describe_form(FORMS["stop_voice"][form])
            self._do(f"stop_voice({s}, {shown})", actions.stop_voice(world, s, form))

        @precondition(lambda self: self._any(lambda p: p.authenticated and p.ws_voice))
        @step(slot=SLOT, recording=RECORDING)
        def say_websocket(self, slot: str, recording: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated and p.ws_voice)
            name = RECORDINGS[recording].name
            self._do(f"say_websocket({s}, {name})", actions.say_websocket(world, s, recording))

        # -- LiveKit voice -------------------------------------------------------------------

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("livekit_token"))
        def livekit_token(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated)
            shown = describe_form(FORMS["livekit_token"][form])
            self._do(f"livekit_token({s}, {shown})", actions.livekit_token(world, s, form))

        @precondition(lambda self: self._any(_room_to_connect))
        @step(slot=SLOT)
        def room_connect(self, slot: str) -> None:
            s = self._pick(slot, _room_to_connect)
            room = world.peers[s].token_rooms[-1]
            self._do(f"room_connect({s}, {room})", actions.room_connect(world, s))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, connect=st.booleans(), form=_forms("livekit_join"))
        def livekit_start(self, slot: str, connect: bool, form: int) -> None:
            """A client's LiveKit start in one step: livekit_token, the room connect (or not), livekit_join."""
            s = self._pick(slot, lambda p: p.authenticated)
            shown = describe_form(FORMS["livekit_join"][form])
            label = f"livekit_start({s}, {'room connect, ' if connect else ''}livekit_join {shown})"
            self._do(label, actions.livekit_start(world, s, connect, form))

        @precondition(lambda self: bool(_connected_rooms()))
        @step()
        def room_leave(self) -> None:
            room = _connected_rooms()[0]
            self._do(f"room_leave({room})", actions.room_leave(world, room))

        @precondition(lambda self: bool(_connected_rooms()))
        @step(recording=RECORDING)
        def say_livekit(self, recording: int) -> None:
            room = _connected_rooms()[-1]
            name = RECORDINGS[recording].name
            self._do(f"say_livekit({room}, {name})", actions.say_livekit(world, room, recording))

        @precondition(lambda self: self._any(lambda p: p.authenticated and p.fresh_token))
        @step(slot=SLOT, form=_forms("livekit_join"))
        def livekit_join(self, slot: str, form: int) -> None:
            s = self._pick(slot, lambda p: p.authenticated and p.fresh_token)
            shown = describe_form(FORMS["livekit_join"][form])
            self._do(f"livekit_join({s}, {shown})", actions.livekit_join(world, s, form))

        @precondition(lambda self: self._any())
        @step(slot=SLOT, form=_forms("livekit_leave"))
        def livekit_leave(self, slot: str, form: int) -> None:
            # A client leaves the voice it started (LIFE-2): a socket with nothing to leave is
            # chosen only when no socket has a room
            voiced = self._any(_holds_room)
            s = self._pick(slot, _holds_room if voiced else lambda p: p.authenticated)
            shown = describe_form(FORMS["livekit_leave"][form])
            self._do(f"livekit_leave({s}, {shown})", actions.livekit_leave(world, s, form))

        # -- the checks ----------------------------------------------------------------------

        @invariant()
        def protocol_holds(self) -> None:
            self._check()

        def _check(self) -> None:
            for requirement, check in INVARIANTS.items():
                if requirement not in checked:
                    continue
                problem = check(world)
                if problem:
                    self._broken = True
                    world.breached = True  # shrinking it may go on past the budget
                    world.first_breach.setdefault(requirement, time.monotonic())
                    raise breach_type(requirement)(problem, [s.to_json() for s in world.steps], world.calls)

    def _holds_room(peer: ExplorerPeer) -> bool:
        return peer.authenticated and peer.fresh_token

    def _room_to_connect(peer: ExplorerPeer) -> bool:
        return peer.authenticated and peer.fresh_token and peer.token_rooms[-1] not in world.rooms

    def _connected_rooms() -> list[str]:
        return [
            room
            for room, (_, connection) in world.rooms.items()
            if connection.disconnected_at is None and connection.room.isconnected()
        ]

    return EstuaryExplorer


def run_steps(world: World, checked: frozenset[str], steps: Sequence[ReplayStep]) -> Breach | None:
    """Run ``steps`` as one sequence, without hypothesis: the breach of a ``checked`` requirement, or
    None when none broke or a step could not run (its precondition did not hold: the server
    answered differently this time, or a shorter sequence lost what the step needed)."""
    machine_type = machine_class(world, checked)
    rules = {r.function.__name__: r for r in machine_type.setup_state().rules}
    for n, replayed in enumerate(steps, 1):
        if replayed.rule not in rules:
            known = ", ".join(sorted(rules))
            raise ExplorerError(f"step {n} names no rule of the explorer: {replayed.rule!r} (its rules: {known})")
        wanted, given = sorted(rules[replayed.rule].arguments), sorted(name for name, _ in replayed.args)
        if wanted != given:
            raise ExplorerError(f"step {n}: {replayed.rule} takes the arguments {wanted}, got {given}")
    machine: Any = machine_type()  # an EstuaryExplorer: its rules are called by name
    found: Breach | None = None
    try:
        machine.protocol_holds()
        for replayed in steps:
            if not all(holds(machine) for holds in rules[replayed.rule].preconditions):
                world.note("", f"{replayed.text()} cannot run now: its precondition does not hold")
                return None
            getattr(machine, replayed.rule)(**dict(replayed.args))
            machine.protocol_holds()
    except Breach as breach:
        found = breach
    finally:
        try:
            machine.teardown()  # the last checks (unless broken), then everything closed
        except Breach as breach:
            found = found or breach
    return found if found is not None and found.requirement in checked else None
