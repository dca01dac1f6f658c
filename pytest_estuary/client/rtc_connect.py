"""Bounded LiveKit room connects that are never cancelled.

livekit.rtc's native side waits for the Python side to acknowledge every connect it finishes; a
``Room.connect`` cancelled before that (``asyncio.wait_for`` timing out) is never acknowledged, and
the native side then panics and sends the whole process SIGTERM ("timed out waiting for
ReadyForRoomEventRequest after ConnectCallback"). So a connect that outlives its bound runs on, and
the room is disconnected once it ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pytest_estuary.client.teardown import describe

__all__ = ["ConnectTimeout", "connect_within", "pending_reaps"]

log = logging.getLogger(__name__)

REAP_TIMEOUT = 60.0  # an abandoned Room.connect gives up by itself well within this (its retries take ~32 s)
_ORPHANS: set[asyncio.Task[None]] = set()  # connects that outlived their bound, until their room is left


class ConnectTimeout(TimeoutError):
    """The room connect did not finish within its bound (it was abandoned, not cancelled)."""


async def connect_within(room: Any, url: str, token: str, timeout: float, options: Any = None) -> None:
    """``room.connect(url, token, options)`` within ``timeout`` seconds, else ConnectTimeout; its
    error as raised. On the timeout, or when the caller is cancelled, the connect is abandoned."""
    connecting = room.connect(url, token) if options is None else room.connect(url, token, options)
    attempt = asyncio.ensure_future(connecting)
    try:
        done, _ = await asyncio.wait({attempt}, timeout=timeout)
    except asyncio.CancelledError:
        _abandon(attempt, room)
        raise
    if not done:
        _abandon(attempt, room)
        raise ConnectTimeout(f"the room connect did not finish within {timeout:g} s")
    attempt.result()


def _abandon(attempt: asyncio.Future[None], room: Any) -> None:
    """Let ``attempt`` (a room's connect) finish in the background, then disconnect the room."""

    async def reap() -> None:
        try:
            await asyncio.wait({attempt}, timeout=REAP_TIMEOUT)  # its outcome does not matter: leave anyway
            if attempt.done() and not attempt.cancelled():
                attempt.exception()  # retrieved, so asyncio does not log it as never retrieved
            await room.disconnect()
        except Exception as exc:
            log.warning("teardown: leaving a LiveKit room whose connect was abandoned failed: %s", describe(exc))

    task = asyncio.ensure_future(reap())
    _ORPHANS.add(task)
    task.add_done_callback(_ORPHANS.discard)


def pending_reaps() -> int:
    """Room connects still finishing in the background (0 once all have been cleaned up)."""
    return len(_ORPHANS)
