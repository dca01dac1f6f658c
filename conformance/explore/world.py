"""The explorer's world: its sockets and room connections, what it sent and saw, and a loop to run them on.

hypothesis calls rules synchronously; the sockets live on an event loop in a thread of the
explorer's own, which keeps running between rules, so every event is timestamped when it arrives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import socketio

from conformance.explore.bounds import Bounds
from conformance.explore.steps import Entry, Step, abbreviate
from conformance.peer import RawPeer, WireEvent
from conformance.rtc_peer import RtcPeer
from pytest_estuary.explore_replay import ReplayStep
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.waiting import WaitTimeout, wait_until

__all__ = ["SLOTS", "Expectation", "ExplorationStopped", "ExplorerError", "ExplorerPeer", "LoopThread", "World"]

T = TypeVar("T")
SLOTS = ("p1", "p2")  # two sockets at most, both for the example's one player
HANG_UP = "<disconnect>"


class ExplorerError(RuntimeError):
    """The explorer itself broke (a harness error: ERROR, never a protocol verdict)."""


class ExplorationStopped(RuntimeError):
    """No sequence or step starts now: the budget is spent (and no finding is being shrunk), or
    (``overrun``) even the hard bound, budget plus shrinking plus slack, has passed."""

    def __init__(self, overrun: bool) -> None:
        super().__init__("the exploration ran past its hard bound" if overrun else "the exploring time is spent")
        self.overrun = overrun


class LoopThread:
    """An event loop running in a daemon thread; ``run()`` executes a coroutine there, bounded."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="estuary-explorer", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], bound: float, what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(bound)
        except TimeoutError:
            future.cancel()
            raise ExplorerError(f"the explorer's {what} did not finish within {bound:.1f} s") from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()


@dataclass
class Expectation:
    """What the protocol promised after one action, and whether it came (``broken`` says how not)."""

    requirement: str
    peer: str
    what: str
    broken: str | None = None


class ExplorerPeer(RawPeer):
    """A raw peer that logs into the world's current step and keeps the model of its session."""

    def __init__(self, world: World, target: EstuaryTarget, name: str) -> None:
        super().__init__(target, name=name)
        self.world = world
        self.closing = False
        self.authenticated = False
        self.token_rooms: list[str] = []
        self.ws_voice = False
        self.sent: dict[str, int] = {}
        self.spoke = False
        # (event, a documented form?, a probe?) sent since the last probe was answered: what a hang-up
        # followed (the server had everything before that answer)
        self.unanswered: list[tuple[str, bool, bool]] = []
        self.streams: list[asyncio.Task[None]] = []
        self.token_reply: dict[str, Any] = {}
        self.left_rooms: set[str] = set()  # rooms of tokens given before a livekit_leave or stop_voice

    @property
    def fresh_token(self) -> bool:
        """A token reply since the last livekit_leave or stop_voice: its room may be joined (a left room is over)."""
        return bool(self.token_rooms) and self.token_rooms[-1] not in self.left_rooms

    def _record(self, direction: Literal["in", "out"], name: str, args: tuple[Any, ...]) -> None:
        super()._record(direction, name, args)
        self.world.log("sent" if direction == "out" else "received", self.name, name, args)

    async def send(self, name: str, payload: Any, *, documented: bool = True, probe: bool = False) -> float:
        """Emit ``name``; returns the send time. ``documented``: a form protocol.md lists (WIRE-2);
        ``probe``: the explorer's own text probe after a step."""
        self.sent[name] = self.sent.get(name, 0) + 1
        self.unanswered.append((name, documented, probe))
        if not documented:
            self.world.malformed_sent.add(self.name)
        started = time.monotonic()
        try:
            await self.emit(name, payload)
        except socketio.exceptions.BadNamespaceError:
            if self.sio.connected and not self.disconnected.is_set():
                raise
            # The server closed the socket while this was on its way: the hang-up is the finding.
            self.world.note(self.name, f"{name} not sent: the server had closed the connection")
        return started

    def hang_up_cause(self) -> tuple[str, bool] | None:
        """The event a hang-up of the server followed, and whether it was a documented form: the
        first malformed or unknown one sent since the last probe was answered, else the step's own
        event that was sent last (a step may send several), rather than the probe that came after it."""
        malformed = [sent for sent in self.unanswered if not sent[1]]
        own = [sent for sent in self.unanswered if not sent[2]]
        chosen = malformed[:1] or own[-1:] or self.unanswered[-1:]
        return (chosen[0][0], chosen[0][1]) if chosen else None

    @property
    def live(self) -> bool:
        return self.sio.connected and not self.closing and not self.disconnected.is_set()

    def received(self, names: str | tuple[str, ...], since: float = 0.0) -> list[WireEvent]:
        """Well-formed events only: one without its object argument is WIRE-1's finding, and no
        other check reads it (or blames its own requirement for it)."""
        return [e for e in self.seen(names, since=since) if e.well_formed]

    async def first(
        self, names: str | tuple[str, ...], since: float, bound: float, predicate: Any = None
    ) -> WireEvent | None:
        """The first ``names`` event at or after ``since`` within ``bound``; None when none came, or the
        socket closed first (nothing more can come), or an invariant broke meanwhile (``world.watch``)."""

        def found() -> WireEvent | bool:
            for event in self.received(names, since=since):
                if predicate is None or predicate(event):
                    return event
            # a broken invariant ends every wait: the step's finding is there, waiting adds nothing
            return self.disconnected.is_set() or self.world.watch()

        try:
            got = await wait_until(found, timeout=bound, awaited=f"{names!r}", changed=self._changed)
        except WaitTimeout:
            return None
        return got if isinstance(got, WireEvent) else None


@dataclass
class World:
    """Everything one explored sequence made; ``reset()`` between sequences closes it all."""

    target: EstuaryTarget
    bounds: Bounds
    loop: LoopThread
    livekit: LiveKitCredentials | None = None  # known in embedded mode: rooms are then listed too
    peers: dict[str, ExplorerPeer] = field(default_factory=dict)
    rooms: dict[str, tuple[str, RtcPeer]] = field(default_factory=dict)  # room → (socket, connection)
    steps: list[Step] = field(default_factory=list)
    calls: list[ReplayStep] = field(default_factory=list)  # each step's rule and arguments
    expectations: list[Expectation] = field(default_factory=list)
    blocks: dict[str, str] = field(default_factory=dict)  # requirement → what failed (a step, not a finding)
    malformed_sent: set[str] = field(default_factory=set)  # sockets sent a malformed form in this step
    watch: Callable[[], bool] = lambda: False  # True once a checked invariant is broken (the machine sets it)
    player_id: str = ""
    t0: float = 0.0
    closed_peers: list[ExplorerPeer] = field(default_factory=list)
    pending: list[asyncio.Future[None]] = field(default_factory=list)  # checks still watching a bound
    sequences: int = 0  # across the exploration (the bench's steps per second)
    total_steps: int = 0
    first_breach: dict[str, float] = field(default_factory=dict)  # requirement → when first seen broken
    first_exercised: dict[str, float] = field(default_factory=dict)  # requirement → when a step first
    # gave it a chance to break
    stop_at: float = float("inf")  # the budget's end: no new sequence or step, unless shrinking a finding
    hard_deadline: float = float("inf")  # monotonic time past which no sequence or step starts at all
    breached: bool = False  # a finding was raised in this hypothesis run (it is shrunk past stop_at)

    def _may_start(self) -> None:
        """A sequence's steps wait out bounds of seconds each: the budget is looked at before each
        one, not only between hypothesis runs, else one run of a few sequences can take minutes."""
        now = time.monotonic()
        if now > self.hard_deadline:
            raise ExplorationStopped(overrun=True)
        if now > self.stop_at and not self.breached:
            raise ExplorationStopped(overrun=False)

    def begin(self) -> None:
        self._may_start()
        self.player_id = self.target.unique_player_id()
        self.t0 = time.monotonic()
        self.sequences += 1

    def log(self, direction: Literal["sent", "received", "note"], peer: str, event: str, args: tuple[Any, ...]) -> None:
        if not self.steps:
            return
        payload = None if direction == "note" else abbreviate(args)
        entry = Entry(time.monotonic() - self.t0, direction, peer, event, payload)
        step = self.steps[-1]
        (step.sent if direction == "sent" else step.received).append(entry)

    def start_step(self, action: str, call: ReplayStep) -> None:
        self._may_start()
        self.steps.append(Step(len(self.steps) + 1, action, time.monotonic() - self.t0))
        self.calls.append(call)
        self.malformed_sent = set()
        self.total_steps += 1
        for requirement in ("WIRE-1", "WIRE-2"):
            self._exercise(requirement)

    def note(self, peer: str, what: str) -> None:
        self.log("note", peer, what, ())

    def block(self, requirement: str, peer: str, what: str) -> None:
        """A step of another requirement failed: noted, never a finding of the explorer's own."""
        self.blocks.setdefault(requirement, what)
        self.note(peer, f"BLOCKED by {requirement}: {what}")

    def expect(self, requirement: str, peer: str, what: str, broken: str | None) -> None:
        self.expectations.append(Expectation(requirement, peer, what, broken))
        self._exercise(requirement)

    def _exercise(self, requirement: str) -> None:
        self.first_exercised.setdefault(requirement, time.monotonic())

    @property
    def exercised(self) -> set[str]:
        """The requirements some step gave a chance to break."""
        return set(self.first_exercised)

    def open_peers(self) -> list[ExplorerPeer]:
        return [p for p in self.peers.values() if p.live and p.authenticated]

    async def settle(self) -> None:
        """Let the checks still watching a bound finish (each ends by its own deadline)."""
        if self.pending:
            await asyncio.wait(self.pending, timeout=self.bounds.longest())

    async def close_all(self) -> None:
        """Close every socket and room connection this sequence made (bounded, errors swallowed)."""
        for task in self.pending:
            task.cancel()
        self.pending.clear()
        for peer in [*self.peers.values(), *self.closed_peers]:
            for task in peer.streams:
                task.cancel()
            peer.closing = True
            try:
                await asyncio.wait_for(peer.close(), self.bounds.leave)
            except Exception:  # a socket that will not close cleanly is gone anyway
                pass
        for _, connection in self.rooms.values():
            await connection.close(self.bounds.leave)
        self.peers.clear()
        self.closed_peers.clear()
        self.rooms.clear()

    def reset(self) -> None:
        self.loop.run(self.close_all(), self.bounds.leave * (2 + len(self.rooms) + len(self.peers)), "clean-up")
        self.steps = []
        self.calls = []
        self.expectations = []
