"""Event dispatch for the app: on/off, history, and bounded waits for the next event of a kind."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from pytest_estuary.client.errors import ConfigError, EventTimeout
from pytest_estuary.client.teardown import cancel_and_wait

__all__ = ["Callback", "Emitter", "HistoryEntry", "Waiter"]

log = logging.getLogger("pytest_estuary.client")
Callback = Callable[..., object]  # sync or async; what a sync one returns is ignored
Predicate = Callable[[Any], object]
HISTORY_LIMIT = 10_000  # a long session must not grow without bound


class HistoryEntry(NamedTuple):
    t: float  # time.monotonic()
    event: str
    payload: Any


def _takes_argument(callback: Callback) -> bool:
    """``livekit_disconnected()`` style callbacks take nothing; others get the payload."""
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


class Waiter:
    """Registered before the action that provokes the event, so a fast reply is never missed."""

    def __init__(self, emitter: Emitter, events: frozenset[str], predicate: Predicate | None) -> None:
        self.events, self.predicate = events, predicate
        self.future: asyncio.Future[HistoryEntry] = asyncio.get_running_loop().create_future()
        self._emitter = emitter
        self.started = len(emitter.history)

    def offer(self, entry: HistoryEntry) -> None:
        if self.future.done() or entry.event not in self.events:
            return
        if self.predicate is not None:
            try:
                if not self.predicate(entry.payload):
                    return
            except Exception as exc:  # a broken predicate fails the wait, loudly
                self.future.set_exception(exc)
                return
        self.future.set_result(entry)

    async def wait(self, timeout: float, awaited: str | None = None) -> HistoryEntry:
        try:
            return await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except TimeoutError:
            seen = [e.event for e in self._emitter.history[self.started :]]
            raise EventTimeout(awaited or " or ".join(sorted(self.events)), timeout, seen) from None
        finally:
            self.cancel()

    def cancel(self) -> None:
        self._emitter._waiters.discard(self)
        if not self.future.done():
            self.future.cancel()


class Emitter:
    """Calls listeners (sync or async) with one typed payload; records every event."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callback]] = {}
        self._waiters: set[Waiter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.history: list[HistoryEntry] = []

    def on(self, event: str, callback: Callback) -> None:
        if not callable(callback):
            raise ConfigError("callback", f"a callable for on({event!r}, ...)", callback)
        self._listeners.setdefault(event, []).append(callback)

    def off(self, event: str, callback: Callback) -> None:
        listeners = self._listeners.get(event, [])
        if callback in listeners:
            listeners.remove(callback)

    def listener_count(self, event: str | None = None) -> int:
        if event is not None:
            return len(self._listeners.get(event, []))
        return sum(len(v) for v in self._listeners.values())

    def emit(self, event: str, payload: Any = None) -> None:
        entry = HistoryEntry(time.monotonic(), event, payload)
        self.history.append(entry)
        if len(self.history) > HISTORY_LIMIT:
            del self.history[: HISTORY_LIMIT // 10]
            for waiter in self._waiters:
                waiter.started = max(0, waiter.started - HISTORY_LIMIT // 10)
        for waiter in list(self._waiters):
            waiter.offer(entry)
        for callback in list(self._listeners.get(event, [])):
            try:
                result = callback(payload) if _takes_argument(callback) else callback()
            except Exception:  # one broken listener must not stop the others or the client
                log.exception("listener for %r failed", event)
                continue
            if inspect.isawaitable(result):
                self._spawn(result, event)

    def _spawn(self, awaitable: Awaitable[Any], event: str) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("async listener for %r failed", event)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def waiter(self, events: str | Iterable[str], predicate: Predicate | None = None) -> Waiter:
        names = frozenset([events] if isinstance(events, str) else events)
        waiter = Waiter(self, names, predicate)
        self._waiters.add(waiter)
        return waiter

    async def wait_for(
        self, event: str, *, timeout: float = 5.0, predicate: Predicate | None = None, include_past: bool = False
    ) -> Any:
        """The payload of the next ``event`` (matching ``predicate``), or of a past one with ``include_past``."""
        if include_past:
            for entry in self.history:
                if entry.event == event and (predicate is None or predicate(entry.payload)):
                    return entry.payload
        awaited = f"{event!r}" + (" matching the predicate" if predicate is not None else "")
        return (await self.waiter(event, predicate).wait(timeout, awaited)).payload

    async def aclose(self, timeout: float = 2.0) -> None:
        """Drop waiters; let async listeners finish within ``timeout``, then cancel the rest."""
        for waiter in list(self._waiters):
            waiter.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                log.warning("an async listener did not finish within %.1f s of disconnect(); cancelled", timeout)
                await cancel_and_wait(task, timeout)
