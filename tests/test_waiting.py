"""The one bounded-wait helper: it returns as soon as the condition holds, and a timeout says what was seen."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pytest_estuary.waiting import (
    ConditionHeld,
    WaitTimeout,
    never_within,
    never_within_sync,
    wait_until,
    wait_until_sync,
)


@pytest.mark.asyncio
async def test_wait_until_returns_the_first_truthy_value() -> None:
    items: list[int] = []
    asyncio.get_running_loop().call_later(0.05, items.append, 7)
    assert await wait_until(lambda: list(items), timeout=2.0, awaited="an item") == [7]


@pytest.mark.asyncio
async def test_wait_until_accepts_an_async_condition() -> None:
    calls = 0

    async def third_time() -> int:
        nonlocal calls
        calls += 1
        return calls if calls >= 3 else 0

    assert await wait_until(third_time, timeout=2.0, awaited="the third call", interval=0.001) == 3


@pytest.mark.asyncio
async def test_wait_until_timeout_names_what_was_awaited_and_seen() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WaitTimeout) as failure:
        await wait_until(lambda: False, timeout=0.2, awaited="a room to go", seen=lambda: ["room-1"])
    took = loop.time() - started
    assert 0.2 <= took < 0.2 + 0.5, took
    assert "a room to go" in str(failure.value) and "room-1" in str(failure.value) and "0.20 s" in str(failure.value)
    assert isinstance(failure.value, TimeoutError) and failure.value.seen == ["room-1"]


@pytest.mark.asyncio
async def test_wait_until_bounds_an_async_condition_that_hangs() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WaitTimeout, match="did not return"):
        await wait_until(hangs, timeout=0.2, awaited="a hanging check")
    assert loop.time() - started < 0.2 + 0.5


@pytest.mark.asyncio
async def test_wait_until_wakes_on_the_changed_event_not_the_poll() -> None:
    changed = asyncio.Event()
    box: list[str] = []

    def produce() -> None:
        box.append("x")
        changed.set()

    loop = asyncio.get_running_loop()
    loop.call_later(0.05, produce)
    started = loop.time()
    # with a 10 s poll interval only the event can end this wait quickly
    await wait_until(lambda: box, timeout=2.0, awaited="x", changed=changed, interval=10.0)
    assert loop.time() - started < 0.2


@pytest.mark.asyncio
async def test_a_condition_that_raises_fails_the_wait_with_its_error() -> None:
    def broken() -> bool:
        raise TimeoutError("the check's own timeout")

    with pytest.raises(TimeoutError, match="the check's own timeout"):
        await wait_until(broken, timeout=1.0, awaited="x")


@pytest.mark.asyncio
async def test_never_within_passes_quietly_and_catches_what_happens() -> None:
    await never_within(lambda: False, window=0.1, what="nothing")
    events: list[str] = []
    asyncio.get_running_loop().call_later(0.05, events.append, "reconnecting")
    with pytest.raises(ConditionHeld) as failure:
        await never_within(lambda: "reconnecting" in events, window=1.0, what="a reconnect", seen=lambda: events)
    assert failure.value.after < 1.0 and "a reconnect" in str(failure.value) and "reconnecting" in str(failure.value)


@pytest.mark.parametrize("bound", [0, -1.0, float("nan"), float("inf")])
@pytest.mark.asyncio
async def test_bounds_must_be_positive_and_finite(bound: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        await wait_until(lambda: True, timeout=bound, awaited="x")
    with pytest.raises(ValueError, match="positive"):
        await never_within(lambda: False, window=bound, what="x")


def test_sync_flavour_waits_for_another_thread() -> None:
    done = threading.Event()
    threading.Timer(0.05, done.set).start()
    assert wait_until_sync(done.is_set, timeout=2.0, awaited="the timer") is True
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="never"):
        wait_until_sync(lambda: 0, timeout=0.1, awaited="never")
    assert time.monotonic() - started < 0.1 + 0.5
    never_within_sync(lambda: False, window=0.05, what="nothing")
    with pytest.raises(ConditionHeld):
        never_within_sync(lambda: True, window=1.0, what="always")
