"""Every event in and out of the fake server, with time and session; waits are bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EventLog", "EventWaitTimeout", "RecordedEvent", "Violation"]

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class RecordedEvent:
    """One event: ``in`` = client → server, ``out`` = server → client; ``payload`` is the raw args."""

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
            "payload": _redacted(self.payload),
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


_SECRET_KEYS = frozenset({"api_key", "token"})


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (f"{str(v)[:4]}…" if k in _SECRET_KEYS else _redacted(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


class EventLog:
    """Thread-safe: the server's loop appends, tests on any thread or loop read and wait."""

    def __init__(self) -> None:
        self._events: list[RecordedEvent] = []
        self._violations: list[Violation] = []
        self._cond = threading.Condition()

    def record(self, sid: str, session_id: str | None, direction: Direction, name: str, payload: Any) -> None:
        with self._cond:
            self._events.append(RecordedEvent(time.monotonic(), session_id, sid, direction, name, payload))
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
            self._violations.clear()

    def all(self) -> list[RecordedEvent]:
        with self._cond:
            return list(self._events)

    def find(
        self,
        name: str | None = None,
        direction: Direction | None = None,
        session_id: str | None = None,
        since: float = 0.0,
    ) -> list[RecordedEvent]:
        with self._cond:
            return [e for e in self._events if _matches(e, name, direction, session_id, since)]

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
                for event in self._events:
                    if _matches(event, name, direction, session_id, since) and (predicate is None or predicate(event)):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(
                        f"  {e.direction} {e.name} {str(_redacted(e.payload))[:120]}" for e in self._events[-10:]
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
