"""Freed memory back to the system: after a burst of large messages, glibc keeps what was freed.

A flood of ~1 MB messages is decoded into ~1 MB strings; glibc then raises its mmap threshold and
serves later large blocks from its heap, which it does not give back when they are freed: the
server's RSS stays up long after the flood. Some of those strings are held by reference cycles
(an exception's traceback holds the frame that decoded the payload) until a full collection.
:class:`Reclaimer` therefore collects and trims, but only after the RSS grew by ``GROWTH`` and
only once the burst is over: a full collection stops the event loop for tens of milliseconds with
thousands of sockets alive (the CLI freezes what exists at its start, and leaves full collections
to the reclaimer: see fake_server.__main__).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import time
from collections.abc import Callable

__all__ = ["Reclaimer", "rss_bytes", "trimmer"]

log = logging.getLogger("fake_server.memory")


def trimmer() -> Callable[[], None] | None:
    """A function that returns free heap memory to the system; None where libc has no malloc_trim."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        malloc_trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int

    def trim() -> None:
        malloc_trim(0)

    return trim


GROWTH = 16 * 2**20
QUIET = 200  # frames since the last check (a second ago): a client streaming voice sends ~50 a second
QUIET_CHECKS = 2  # a pause between two bursts is not their end
MAX_DEFER = 30.0  # seconds a due reclaim waits for the server to stop being busy
FOLLOW_UPS = 3


def rss_bytes() -> int:
    """This process's resident set size (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Reclaimer:
    """Call :meth:`check` now and then (every second or so) with a count of the work done so far
    (frames received) and whether the server is still busy with something that may end soon (e.g.
    sockets waiting out their auth deadline). Once the RSS has grown by ``GROWTH`` over its low mark,
    the first check that finds the server quiet (less than ``QUIET`` units of work since the last
    check, ``QUIET_CHECKS`` times in a row; and not busy, or busy for ``MAX_DEFER`` seconds already)
    runs a full collection and returns free heap memory to the system; the next ``FOLLOW_UPS`` quiet
    checks return what was freed since.
    Never in the middle of a burst: a full collection there stops the event loop for tens of
    milliseconds, for every client, and what a burst leaves behind is freed only as it ends."""

    def __init__(self) -> None:
        self.trim = trimmer()
        self.low = rss_bytes()
        self.work = 0
        self.quiet = 0  # checks in a row that found the server quiet
        self.pending = 0
        self.due_since = 0.0
        self.reclaims = 0
        self.seconds = 0.0  # the event loop spent reclaiming, in all

    async def check(self, work: int = 0, busy: bool = False) -> None:
        rss = rss_bytes()
        if not rss:
            return
        self.quiet = self.quiet + 1 if work - self.work < QUIET else 0
        self.work = work
        now = time.monotonic()
        if rss - self.low >= GROWTH:
            if not self.pending:
                self.due_since = now
            self.pending = 1 + FOLLOW_UPS
        if not self.pending:
            self.low = min(self.low, rss)
            return
        if self.quiet < QUIET_CHECKS or (busy and now - self.due_since < MAX_DEFER):
            return
        started = time.perf_counter()
        if self.pending > FOLLOW_UPS:
            gc.collect()  # the burst's cycles (a failed decode's traceback holds its frame and payload)
        self.pending -= 1
        took = time.perf_counter() - started
        if self.trim is not None:
            await asyncio.to_thread(self.trim)  # ctypes lets go of the GIL: the loop goes on meanwhile
        self.reclaims += 1
        self.seconds += took
        self.low = rss_bytes() or rss
        log.debug("reclaimed memory (loop held %.0f ms): RSS %.0f -> %.0f MB", took * 1e3, rss >> 20, self.low >> 20)
