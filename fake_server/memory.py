"""Freed memory back to the system: after a burst of large messages, glibc keeps what was freed.

A flood of ~1 MB messages is decoded into ~1 MB strings; glibc then raises its mmap threshold and
serves later large blocks from its heap, which it does not give back when they are freed: the
server's RSS stays up long after the flood. Some of those strings are held by reference cycles
(an exception's traceback holds the frame that decoded the payload) until a full collection.
:class:`Reclaimer` therefore collects and trims, but only after the RSS grew by ``GROWTH``: a full
collection in a test process with many objects takes tens of milliseconds (the CLI freezes what
exists at its start, so there it takes a few).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
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
FOLLOW_UPS = 3


def rss_bytes() -> int:
    """This process's resident set size (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Reclaimer:
    """Call :meth:`check` now and then (every few seconds). Once the RSS has grown by ``GROWTH`` over
    its low mark, it runs a full collection and returns free heap memory to the system, at this call
    and the next ``FOLLOW_UPS`` ones: what a burst leaves behind is freed only as the burst ends."""

    def __init__(self) -> None:
        self.trim = trimmer()
        self.low = rss_bytes()
        self.pending = 0
        self.reclaims = 0

    def check(self) -> None:
        rss = rss_bytes()
        if not rss:
            return
        if rss - self.low >= GROWTH:
            self.pending = 1 + FOLLOW_UPS
        if not self.pending:
            self.low = min(self.low, rss)
            return
        self.pending -= 1
        gc.collect()
        if self.trim is not None:
            self.trim()
        self.reclaims += 1
        self.low = rss_bytes() or rss
        log.debug("reclaimed memory: RSS %.0f -> %.0f MB", rss / 2**20, self.low / 2**20)
