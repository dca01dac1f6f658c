"""Memory given back after a burst (fake_server.memory): never in the middle of one."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from fake_server import FakeEstuaryServer, memory
from fake_server.memory import FOLLOW_UPS, GROWTH, MAX_DEFER, QUIET, Reclaimer

MB = 2**20


@pytest.mark.asyncio
async def test_a_reclaim_waits_until_the_burst_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    rss = [100 * MB]
    monkeypatch.setattr(memory, "rss_bytes", lambda: rss[0])
    collections: list[int] = []

    def collect() -> int:
        collections.append(1)
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    reclaimer = Reclaimer()
    reclaimer.trim = None
    work = 0
    rss[0] += GROWTH + MB  # a burst: the RSS grew, and frames keep coming
    for _ in range(3):
        work += QUIET * 10
        await reclaimer.check(work)
    assert reclaimer.reclaims == 0 and not collections, "it reclaimed in the middle of the burst"
    await reclaimer.check(work + 1)  # one quiet second: maybe only a pause between two bursts
    assert reclaimer.reclaims == 0
    await reclaimer.check(work + 1, busy=True)  # quiet, but sockets wait out their auth deadline
    assert reclaimer.reclaims == 0
    await reclaimer.check(work + 2)  # quiet and not busy: one full collection, then trims only
    assert reclaimer.reclaims == 1 and len(collections) == 1
    for step in range(FOLLOW_UPS + 2):
        await reclaimer.check(work + 3 + step)
    assert reclaimer.reclaims == 1 + FOLLOW_UPS and len(collections) == 1


@pytest.mark.asyncio
async def test_a_busy_server_is_reclaimed_after_the_longest_deferral(monkeypatch: pytest.MonkeyPatch) -> None:
    rss = [100 * MB]
    monkeypatch.setattr(memory, "rss_bytes", lambda: rss[0])
    reclaimer = Reclaimer()
    reclaimer.trim = None
    rss[0] += GROWTH + MB
    await reclaimer.check(0, busy=True)
    await reclaimer.check(0, busy=True)
    assert reclaimer.reclaims == 0
    reclaimer.due_since -= MAX_DEFER + 1  # one unauthenticated socket after another must not defer it forever
    await reclaimer.check(1, busy=True)
    assert reclaimer.reclaims == 1


def test_the_servers_reclaimer_keeps_running() -> None:
    with FakeEstuaryServer(reclaim_memory=True, suite_utterances=False) as server:
        time.sleep(2.5)  # two checks
        task = server._trimming
        assert task is not None
        assert not task.done(), task.exception() if task.done() and not task.cancelled() else "cancelled"
        assert asyncio.isfuture(task)
