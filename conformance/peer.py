"""A raw Socket.IO peer for black-box server cases: sends exactly what a case says, records all.

Unlike the client, it has no rules of its own, so it can send every variant of protocol.md
section 10 and see every argument the server sends (WIRE-1 counts them).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import socketio

from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.verdicts import step, violation

__all__ = ["NAMESPACE", "NO_ARGUMENT", "ConnectionClosed", "RawPeer", "WireEvent", "WireTimeout"]

NAMESPACE = "/sdk"
NO_ARGUMENT: Any = object()  # emit(..., NO_ARGUMENT) sends the event with no argument at all
AuthStyle = Literal["connect", "event", "none"]


@dataclass(frozen=True)
class WireEvent:
    """One event seen on the wire: ``args`` are exactly the arguments that travelled."""

    t: float
    direction: Literal["in", "out"]  # "in": server → peer, "out": peer → server
    name: str
    args: tuple[Any, ...]

    @property
    def payload(self) -> Any:
        """The single argument, or None when there was none."""
        return self.args[0] if self.args else None

    @property
    def well_formed(self) -> bool:
        """WIRE-1: exactly one argument, a JSON object (our ``<disconnect>`` marker is no event)."""
        return self.name.startswith("<") or (len(self.args) == 1 and isinstance(self.args[0], dict))

    def describe(self) -> str:
        arrow = "<-" if self.direction == "in" else "->"
        args = tuple(_redact(a) for a in self.args)
        if not args:
            return f"{arrow} {self.name} <no argument>"
        text = repr(args[0] if len(args) == 1 else args)
        return f"{arrow} {self.name} {_hide_tokens(text)[:240]}"


_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")


def _hide_tokens(text: str) -> str:
    """JWTs shortened to a prefix: wire dumps end up in reports."""
    return _JWT.sub(lambda m: m.group(0)[:8] + "…", text)


_SECRET_KEYS = frozenset({"api_key", "token", "livekitToken"})


LONG_TEXT = 120


def _redact(value: Any) -> Any:
    """A payload with API keys and tokens cut to a prefix and long strings (audio) abbreviated,
    for dumps that end up in reports."""
    if isinstance(value, dict):
        return {
            k: (str(v)[:4] + "…" if k in _SECRET_KEYS and isinstance(v, str) else _redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str) and len(value) > LONG_TEXT:
        if _BASE64.fullmatch(value):
            return _Abbreviated(f"<base64, {len(value) * 3 // 4} bytes>")
        return _Abbreviated(f"<{value[:40]!r}…, {len(value)} chars>")
    return value


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class _Abbreviated(str):
    """A stand-in that prints without quotes."""

    def __repr__(self) -> str:
        return str(self)


class WireTimeout(AssertionError):
    """A bounded wait ran out; the message says what was awaited and what came instead."""


class ConnectionClosed(WireTimeout):
    """The connection ended while a wait was on: nothing more can come, so the wait ends at once."""


class RawPeer:
    """One Socket.IO connection to the target's ``/sdk`` namespace, recording every event."""

    def __init__(self, target: EstuaryTarget, *, name: str = "peer") -> None:
        self.target = target
        self.name = name
        self.events: list[WireEvent] = []
        self.disconnected = asyncio.Event()
        self._closing = False  # set by close(): a disconnect we asked for is not the server's doing
        self._changed = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_any, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def _on_any(self, event: str, *args: Any) -> None:
        self._record("in", event, args)

    async def _on_disconnect(self, *_reason: Any) -> None:
        self._record("in", "<disconnect>", ())
        self.disconnected.set()

    def _record(self, direction: Literal["in", "out"], name: str, args: tuple[Any, ...]) -> None:
        self.events.append(WireEvent(time.monotonic(), direction, name, args))
        self._changed.set()

    def auth(self, **overrides: Any) -> dict[str, Any]:
        """The target's auth dict (a fresh player id) with ``overrides`` applied."""
        auth = {
            "api_key": self.target.api_key,
            "character_id": self.target.character_id,
            "player_id": self.target.unique_player_id(),
        }
        auth.update(overrides)
        return auth

    async def open(self, *, auth: dict[str, Any] | None = None, style: AuthStyle = "connect") -> None:
        """Connect the namespace; with style "event" the auth follows as ``authenticate``."""
        url = self.target.url
        with step("CONN-1", "Socket.IO connect to /sdk over WebSocket"):
            await self._connect(url, auth if style == "connect" else None)
        if style == "event":
            await self.emit("authenticate", auth if auth is not None else self.auth())

    async def _connect(self, url: str, auth: dict[str, Any] | None) -> None:
        await self.sio.connect(
            url,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth=auth,
            wait_timeout=max(2, int(self.target.timeout)),
        )

    async def session(self, *, style: AuthStyle = "connect", **overrides: Any) -> dict[str, Any]:
        """Connect and authenticate; returns the ``session_info`` payload.

        A step of CONN-2 (auth in CONNECT) or CONN-3 (``authenticate`` event): when no session
        opens, the case is BLOCKED by that requirement. It stops at once on ``auth_error``.
        """
        requirement = "CONN-3" if style == "event" else "CONN-2"
        with step(requirement, f"open a session (auth {'event' if style == 'event' else 'in CONNECT'})"):
            auth = self.auth(**overrides)
            await self.open(auth=auth, style=style)
            event = await self.wait(("session_info", "auth_error"))
            if event.name == "auth_error":
                raise AssertionError(f"Expected: session_info\nActual:   {event.describe()}")
        payload: dict[str, Any] = event.payload
        return payload

    async def emit(self, name: str, payload: Any = NO_ARGUMENT) -> None:
        """Send ``name`` with one argument (``None`` travels as JSON null) or, by default, none."""
        args: tuple[Any, ...] = () if payload is NO_ARGUMENT else (payload,)
        self._record("out", name, args)
        # python-socketio sends a tuple's items as the arguments and None as "no argument".
        await self.sio.emit(name, data=args if args else None, namespace=NAMESPACE)

    def seen(self, name: str | tuple[str, ...], *, since: float = 0.0) -> list[WireEvent]:
        names = (name,) if isinstance(name, str) else name
        return [e for e in self.events if e.direction == "in" and e.name in names and e.t >= since]

    async def wait(
        self,
        name: str | tuple[str, ...],
        *,
        timeout: float | None = None,
        predicate: Callable[[WireEvent], bool] | None = None,
        since: float = 0.0,
    ) -> WireEvent:
        """The first ``name`` event (or any of several names) received at or after ``since``."""
        bound = self.target.timeout if timeout is None else timeout
        deadline = time.monotonic() + bound
        while True:
            for event in self.seen(name, since=since):
                if not event.well_formed:  # a malformed event is WIRE-1's failure, wherever it shows
                    raise violation(
                        "WIRE-1",
                        f"{self.name}: Expected: {event.name} with exactly one object argument\n"
                        f"Actual:   {event.describe()}",
                    )
                if predicate is None or predicate(event):
                    return event
            if self.disconnected.is_set():
                closed = self._closed_by()
                raise ConnectionClosed(f"{self.name}: no {name!r}: {closed}; last events seen:\n{self.tail()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout(f"{self.name}: no {name!r} within {bound:.1f} s; last events seen:\n{self.tail()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def quiet(self, name: str | tuple[str, ...], *, within: float, since: float | None = None) -> None:
        """Assert that no ``name`` event arrives within ``within`` seconds."""
        start = time.monotonic() if since is None else since
        await asyncio.sleep(max(0.0, start + within - time.monotonic()))
        unexpected = self.seen(name, since=start)
        if unexpected:
            raise AssertionError(
                f"{self.name}: expected no {name!r} within {within:.1f} s, got {unexpected[0].describe()}"
            )

    def _closed_by(self) -> str:
        if self._closing:
            return "this peer closed the connection"
        gone = next((e.t for e in reversed(self.events) if e.name == "<disconnect>"), time.monotonic())
        last = next((e for e in reversed(self.events) if e.direction == "out" and e.t <= gone), None)
        after = f"after {last.name}" if last else "before this peer sent anything"
        return f"the server closed the connection {after}"

    def tail(self, count: int = 12) -> str:
        return "\n".join(f"  {e.describe()}" for e in self.events[-count:]) or "  <nothing>"

    async def close(self) -> None:
        self._closing = True
        if self.sio.connected:
            await self.sio.disconnect()
