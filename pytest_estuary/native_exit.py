"""A process that ran livekit's native runtime ends without finalizing the interpreter under it.

livekit's Rust threads call back into Python (log records, room events) whenever they like. Once
CPython 3.11 has begun to finalize, a thread that asks for the GIL is ended with pthread_exit, and
that forced unwind through Rust frames aborts the whole process ("panic in a function that cannot
unwind", exit -6), after every test has passed and every report is written. livekit's own atexit
handler disposes its rooms but not its threads. So a pytest session arms this module: its handler,
run at exit after livekit's, flushes stdio and logging and ends the process with the session's
status, before finalization begins. A process that never started livekit's runtime exits as usual.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Callable

__all__ = ["arm", "native_runtime_started"]

_status: Callable[[], int] | None = None


def native_runtime_started() -> bool:
    """Whether this process loaded livekit's FFI and started its runtime."""
    ffi = sys.modules.get("livekit.rtc._ffi_client")
    client = getattr(ffi, "FfiClient", None)
    return client is not None and getattr(client, "_instance", None) is not None


def arm(status: Callable[[], int]) -> None:
    """End this process with ``status()`` at exit if livekit's runtime ran in it. The first caller
    wins: a session run inside another (pytester) must not decide the outer process's status."""
    global _status
    if _status is not None:
        return
    _status = status
    # Registered now, before livekit's FFI client registers its dispose: atexit runs last-in
    # first-out, so livekit disposes its rooms first and this handler comes after it.
    atexit.register(_end)


def _end() -> None:
    if _status is None or not native_runtime_started():
        return
    try:
        code = int(_status())
    except Exception:  # a status that cannot be read must not turn into a traceback at exit
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
