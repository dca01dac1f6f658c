"""Teardown that never hides a failure and never swallows the caller's cancellation.

A step of tearing down (``livekit_leave``, leaving the room, stopping voice, closing the socket)
that fails is logged once at WARNING with its reason (JWTs redacted) and recorded as the app event
``teardown_failed`` (so it shows in ``client.history``); teardown then goes on with the next step.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["TeardownFailure", "cancel_and_wait", "close_input", "describe", "redact", "report_failure"]

log = logging.getLogger("pytest_estuary.client")
_JWT = re.compile(r"eyJ[\w-]*(?:\.[\w-]*){0,2}")


class _Closable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class TeardownFailure:
    """App event ``teardown_failed``: ``step`` of a teardown did not complete; ``reason`` says why."""

    step: str
    reason: str


def redact(text: str, secret: str = "") -> str:
    """``text`` without ``secret`` and without anything that looks like a JWT (a short prefix stays)."""
    if secret and not secret.startswith("eyJ"):
        text = text.replace(secret, f"{secret[:4]}…")
    return _JWT.sub(lambda m: f"{m.group(0)[:4]}…", text)


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, JWTs redacted."""
    text = str(exc)
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def report_failure(emit: Callable[[str, object], None], step: str, reason: str) -> TeardownFailure:
    """Log one WARNING for a failed teardown step and record it as app event ``teardown_failed``."""
    failure = TeardownFailure(step, redact(reason))
    log.warning("teardown: %s failed: %s", step, failure.reason)
    emit("teardown_failed", failure)
    return failure


async def close_input(source: _Closable, emit: Callable[[str, object], None], timeout: float) -> None:
    """Close an audio input within ``timeout``; a failure or overrun is reported, not raised (the
    input counts as closed either way: ``AudioInput.close`` marks it closed before it waits)."""
    try:
        async with asyncio.timeout(timeout):
            await source.close()
    except TimeoutError:
        report_failure(emit, "closing the audio input", f"{type(source).__name__} did not close within {timeout:g} s")
    except Exception as exc:
        report_failure(emit, "closing the audio input", describe(exc))


async def cancel_and_wait(task: asyncio.Future[Any] | None, timeout: float) -> BaseException | None:
    """Cancel ``task`` and wait (bounded by ``timeout``) for it to end; returns the error it ended with.

    The CancelledError of ``task`` itself is expected and dropped; a cancellation of the *caller*
    while it waits is re-raised, never swallowed.
    """
    if task is None or task.done():
        return None if task is None or task.cancelled() else task.exception()
    me = asyncio.current_task()
    requests = me.cancelling() if me is not None else 0  # a teardown may itself run after a cancellation
    task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.CancelledError:
        if me is not None and me.cancelling() > requests:
            raise  # the caller was cancelled while it waited
        return None
    except TimeoutError:
        return TimeoutError(f"the task did not end within {timeout:g} s of being cancelled")
    except Exception as exc:  # the task's own failure: the caller decides whether it matters
        return exc
    return None
