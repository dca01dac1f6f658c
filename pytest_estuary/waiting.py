"""One bounded wait: a condition, a timeout, and what was seen when the condition did not come true.

    rooms = await wait_until(lambda: not fake.live_rooms(), timeout=5, awaited="every room deleted",
                             seen=fake.live_rooms)

``wait_until`` polls ``condition`` (sync or async) until it returns something truthy and returns
that; ``changed`` (an ``asyncio.Event`` the producer sets) wakes it at once instead of at the next
poll. On timeout it raises :class:`WaitTimeout` naming what was awaited, the bound, and the last
thing ``seen()`` returned (or the condition's last value). ``never_within`` is the other half: it
proves that something does NOT happen within a window, which the caller derives from the bound of
the requirement it checks. ``wait_until_sync`` / ``never_within_sync`` are the same for plain
threads (no event loop).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["ConditionHeld", "WaitTimeout", "never_within", "never_within_sync", "wait_until", "wait_until_sync"]

T = TypeVar("T")
INTERVAL = 0.02  # between polls: short against any bound worth waiting for, cheap on a 2-core machine
SHOWN = 300  # characters of the seen state kept in a message


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


class WaitTimeout(TimeoutError):
    """``awaited`` did not come true within ``timeout`` seconds; ``seen`` is the last state observed."""

    def __init__(self, awaited: str, timeout: float, seen: object) -> None:
        super().__init__(f"timed out after {timeout:.2f} s waiting for {awaited}; last seen: {_shown(seen)}")
        self.awaited, self.timeout, self.seen = awaited, timeout, seen


class ConditionHeld(AssertionError):
    """``never_within``: the thing that must not happen did, ``after`` seconds into the window."""

    def __init__(self, what: str, after: float, window: float, seen: object) -> None:
        super().__init__(f"{what} happened {after:.2f} s into a {window:.2f} s window; seen: {_shown(seen)}")
        self.what, self.after, self.window, self.seen = what, after, window, seen


def _check_bound(name: str, value: float) -> None:
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: expected a positive, finite number of seconds, got {value!r}")


async def _evaluate(condition: Callable[[], T | Awaitable[T]], left: float) -> tuple[bool, T | None]:
    """(True, value) of one check; (False, None) when an async condition overran the time left."""
    value = condition()
    if not inspect.isawaitable(value):
        return True, value
    try:
        async with asyncio.timeout(max(left, INTERVAL)) as bound:
            return True, await value
    except TimeoutError:
        if bound.expired():
            return False, None
        raise  # the condition's own TimeoutError is its failure, not ours


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,
    awaited: str,
    seen: Callable[[], object] | None = None,
    changed: asyncio.Event | None = None,
    interval: float = INTERVAL,
) -> T:
    """The first truthy value of ``condition()`` within ``timeout`` s, else :class:`WaitTimeout`."""
    _check_bound("timeout", timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        if changed is not None:
            changed.clear()  # before the check: a change during the check wakes the next wait
        finished, value = await _evaluate(condition, deadline - loop.time())
        if finished and value:
            return value
        last = value if finished else "the condition itself did not return within the time left"
        left = deadline - loop.time()
        if left <= 0:
            raise WaitTimeout(awaited, timeout, seen() if seen is not None else last)
        if changed is None:
            await asyncio.sleep(min(interval, left))
        else:
            try:
                async with asyncio.timeout(min(max(interval, 0.25), left)):  # the event, or a re-check
                    await changed.wait()
            except TimeoutError:
                pass


async def never_within(
    condition: Callable[[], object | Awaitable[object]],
    *,
    window: float,
    what: str,
    seen: Callable[[], object] | None = None,
    interval: float = INTERVAL,
) -> None:
    """Watch ``condition`` for ``window`` s; :class:`ConditionHeld` the moment it is truthy.

    ``window`` must come from the bound of the requirement under test (say why where you call it):
    a window shorter than that proves nothing.
    """
    _check_bound("window", window)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        _finished, value = await _evaluate(condition, window - (loop.time() - start))
        now = loop.time()
        if value:
            raise ConditionHeld(what, now - start, window, seen() if seen is not None else value)
        if now - start >= window:
            return
        await asyncio.sleep(min(interval, window - (now - start)))


def wait_until_sync(
    condition: Callable[[], T],
    *,
    timeout: float,
    awaited: str,
    seen: Callable[[], object] | None = None,
    interval: float = INTERVAL,
) -> T:
    """``wait_until`` for code without an event loop (a thread, a sync test)."""
    _check_bound("timeout", timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(awaited, timeout, seen() if seen is not None else value)
        time.sleep(min(interval, left))


def never_within_sync(
    condition: Callable[[], object],
    *,
    window: float,
    what: str,
    seen: Callable[[], object] | None = None,
    interval: float = INTERVAL,
) -> None:
    """``never_within`` for code without an event loop."""
    _check_bound("window", window)
    start = time.monotonic()
    while True:
        value = condition()
        now = time.monotonic()
        if value:
            raise ConditionHeld(what, now - start, window, seen() if seen is not None else value)
        if now - start >= window:
            return
        time.sleep(min(interval, window - (now - start)))
