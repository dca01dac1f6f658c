"""Every event in and out of the fake server, with time and session; waits are bounded.

The log is a ring bounded by count and by (estimated) bytes, oldest dropped first, so no client can
grow it without limit: payloads are kept abbreviated (``<base64, 9600 bytes>``), and those of
unknown events and of sockets that have not authenticated only as a one-line summary.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fake_server.abbreviate import abbreviate, approx_size, short_name, summarise
from fake_server.redact import redact_value

__all__ = ["EventLog", "EventWaitTimeout", "RecordedEvent", "Violation"]

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class RecordedEvent:
    """One event: ``in`` = client → server, ``out`` = server → client; ``payload`` is the event's
    argument, abbreviated (or only summarised: see the module docstring)."""

    t: float
    session_id: str | None
    sid: str
    direction: Direction
    name: str
    payload: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "session_id": self.session_id,
            "direction": self.direction,
            "name": self.name,
            "payload": redact_value(self.payload),
        }


@dataclass(frozen=True)
class Violation:
    """A protocol rule a client broke, as the server saw it."""

    session_id: str | None
    rule: str
    expected: str
    actual: str


class EventWaitTimeout(AssertionError):
    """No matching event within the bound; the message lists the last events seen."""


MAX_EVENTS = 10_000
MAX_BYTES = 4_000_000
MAX_VIOLATIONS = 1_000
EVENT_OVERHEAD = 200  # the record itself, its name and ids


class EventLog:
    """Thread-safe: the server's loop appends, tests on any thread or loop read and wait."""

    def __init__(self, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError(f"max_events and max_bytes must be positive, got {max_events} and {max_bytes}")
        self.max_events, self.max_bytes = max_events, max_bytes
        self._events: deque[tuple[RecordedEvent, int]] = deque()
        self._bytes = 0
        self.dropped = 0  # events pushed out of the ring so far
        self._violations: deque[Violation] = deque(maxlen=MAX_VIOLATIONS)
        self._cond = threading.Condition()

    def record(
        self, sid: str, session_id: str | None, direction: Direction, name: str, payload: Any, *, summary: bool = False
    ) -> None:
        """Append one event; ``summary`` keeps only a one-line description of its payload."""
        kept = summarise(payload) if summary else abbreviate(payload)
        event = RecordedEvent(time.monotonic(), session_id, sid, direction, short_name(name), kept)
        size = EVENT_OVERHEAD + approx_size(kept)
        with self._cond:
            self._events.append((event, size))
            self._bytes += size
            while len(self._events) > self.max_events or (self._bytes > self.max_bytes and len(self._events) > 1):
                self._bytes -= self._events.popleft()[1]
                self.dropped += 1
            self._cond.notify_all()

    def violation(self, session_id: str | None, rule: str, expected: str, actual: str) -> None:
        with self._cond:
            self._violations.append(Violation(session_id, rule, expected, actual))

    @property
    def violations(self) -> list[Violation]:
        with self._cond:
            return list(self._violations)

    def clear(self) -> None:
        with self._cond:
            self._events.clear()
            self._bytes = 0
            self.dropped = 0
            self._violations.clear()

    def all(self) -> list[RecordedEvent]:
        with self._cond:
            return [event for event, _ in self._events]

    @property
    def size(self) -> tuple[int, int]:
        """(events held, their estimated bytes)."""
        with self._cond:
            return len(self._events), self._bytes

    def find(
        self,
        name: str | None = None,
        direction: Direction | None = None,
        session_id: str | None = None,
        since: float = 0.0,
    ) -> list[RecordedEvent]:
        with self._cond:
            return [e for e, _ in self._events if _matches(e, name, direction, session_id, since)]

    def wait_for(
        self,
        name: str,
        *,
        direction: Direction = "out",
        predicate: Callable[[RecordedEvent], bool] | None = None,
        timeout: float = 5.0,
        session_id: str | None = None,
        since: float = 0.0,
    ) -> RecordedEvent:
        """Block until a matching event is logged (at or after ``since``); bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event, _ in self._events:
                    if _matches(event, name, direction, session_id, since) and (predicate is None or predicate(event)):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(
                        f"  {e.direction} {e.name} {str(redact_value(e.payload))[:120]}"
                        for e, _ in list(self._events)[-10:]
                    )
                    raise EventWaitTimeout(
                        f"no {direction} event {name!r} within {timeout:.1f} s; last events:\n{tail or '  <none>'}"
                    )
                self._cond.wait(remaining)

    async def wait_for_async(self, name: str, **kwargs: Any) -> RecordedEvent:
        """:meth:`wait_for` from any event loop, without blocking that loop."""
        return await asyncio.to_thread(lambda: self.wait_for(name, **kwargs))


def _matches(
    event: RecordedEvent, name: str | None, direction: Direction | None, session_id: str | None, since: float
) -> bool:
    return (
        (name is None or event.name == name)
        and (direction is None or event.direction == direction)
        and (session_id is None or event.session_id == session_id)
        and event.t >= since
    )
