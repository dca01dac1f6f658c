"""What a conformance result means, and the precondition steps that keep blame where it belongs.

A case observes one requirement (its own ID). Everything it must do first — open a session, get a
token, join the room, get ``livekit_ready`` — is a *step* that belongs to another requirement.
When a step fails, the case is BLOCKED by that step's requirement; it never FAILs for it::

    with step("LK-1", "livekit_token reply"):
        reply = await request_token(peer)

Inside the case that owns the step's ID the step is transparent, so that case is the one place
where the requirement can FAIL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pytest

from pytest_estuary.clients.interface import ClientFailure

__all__ = [
    "EXECUTED",
    "VERDICT_ORDER",
    "Blocked",
    "ProtocolViolation",
    "Verdict",
    "classify",
    "current_case",
    "is_protocol_observation",
    "set_current_case",
    "step",
    "violation",
]

Verdict = Literal["PASS", "FAIL", "BLOCKED", "NON-STRICT", "SKIPPED", "ERROR"]
# Worst first: a case with several reports (setup, call, teardown) keeps the worst one.
VERDICT_ORDER: tuple[Verdict, ...] = ("ERROR", "FAIL", "BLOCKED", "NON-STRICT", "SKIPPED", "PASS")
EXECUTED: frozenset[Verdict] = frozenset({"PASS", "FAIL", "BLOCKED", "NON-STRICT", "ERROR"})

# Libraries whose exceptions report what the network or the peer did, not a bug of the harness.
_PEER_LIBRARIES = frozenset({"socketio", "engineio", "aiohttp", "livekit", "websockets"})

_current: list[str | None] = [None]


def set_current_case(case_id: str | None) -> None:
    """Record the requirement ID of the case now running (the plugin does this around each test)."""
    _current[0] = case_id


def current_case() -> str | None:
    """The requirement ID of the running case, or None outside a conformance case."""
    return _current[0]


class Blocked(Exception):
    """A step that belongs to ``requirement`` failed before the case could observe its own."""

    def __init__(self, requirement: str, step: str, seen: str) -> None:
        super().__init__(requirement, step, seen)
        self.requirement = requirement
        self.step = step
        self.seen = seen

    def __str__(self) -> str:
        return f"BLOCKED by {self.requirement} ({self.step}): {self.seen}"


class ProtocolViolation(AssertionError):
    """An observation that breaks a named requirement, wherever it was made (e.g. WIRE-1)."""

    def __init__(self, requirement: str, message: str) -> None:
        super().__init__(message)
        self.requirement = requirement


def is_protocol_observation(exc: BaseException) -> bool:
    """True when ``exc`` reports what the peer did (an assertion, a timeout, a refused connection).

    Anything else — a ``TypeError``, a ``KeyError`` in our own code — is a harness error (ERROR).
    """
    if isinstance(exc, (AssertionError, TimeoutError, OSError, Blocked)):
        return True
    if isinstance(exc, ClientFailure):  # what a client under test reported, or raised instead
        return exc.code != "INVALID_ARGUMENT"
    if any(cls.__name__ == "EstuaryError" for cls in type(exc).__mro__):
        # Our client's documented errors say what the server did; a bad argument is the caller's.
        return getattr(getattr(exc, "code", None), "value", None) != "INVALID_ARGUMENT"
    return any(cls.__module__.split(".")[0] in _PEER_LIBRARIES for cls in type(exc).__mro__)


def classify(exc: BaseException, level: str) -> dict[str, str | None]:
    """The verdict of a case whose call raised ``exc``: ``{verdict, reason, blocked_by}``.

    BLOCKED for :class:`Blocked`; FAIL (MUST) or NON-STRICT (SHOULD, INFO) for an observation of
    the peer; ERROR for anything else, a bug of the harness. ``reason`` None: use pytest's text.
    """
    if isinstance(exc, Blocked):
        return {"verdict": "BLOCKED", "reason": str(exc), "blocked_by": exc.requirement}
    if isinstance(exc, pytest.fail.Exception) or is_protocol_observation(exc):
        return {"verdict": "FAIL" if level == "MUST" else "NON-STRICT", "reason": None, "blocked_by": None}
    return {
        "verdict": "ERROR",
        "reason": f"harness error, not a protocol observation: {type(exc).__name__}: {exc}",
        "blocked_by": None,
    }


def violation(requirement: str, message: str) -> Exception:
    """The exception for an observation that breaks ``requirement``: FAIL in its own case, else BLOCKED."""
    if current_case() == requirement:
        return ProtocolViolation(requirement, message)
    return Blocked(requirement, "observed", message)


@contextmanager
def step(requirement: str, what: str) -> Iterator[None]:
    """Run a precondition that belongs to ``requirement``; its failure blocks the case.

    Transparent inside the case that owns ``requirement``. Harness errors pass through unchanged.
    """
    if current_case() == requirement:
        yield
        return
    try:
        yield
    except Blocked:
        raise
    except ProtocolViolation as exc:
        if current_case() == exc.requirement:
            raise
        raise Blocked(exc.requirement, what, _first_lines(exc)) from exc
    except Exception as exc:
        if not is_protocol_observation(exc):
            raise
        raise Blocked(requirement, what, _first_lines(exc)) from exc


def _first_lines(exc: BaseException, limit: int = 4) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return " / ".join(line.strip() for line in lines[:limit]) + (" …" if len(lines) > limit else "")
