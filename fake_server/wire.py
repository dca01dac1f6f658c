"""The Socket.IO server, hardened against its clients.

- A packet that does not decode, or a handler that fails on it, costs one rate-limited warning
  line, never a traceback, and never the connection (WIRE-3).
- Client events named like Socket.IO's own (``connect``, ``disconnect``, ``*``, …) or with no
  string name are unknown events: they never reach the connect/disconnect/catch-all handlers.
- A socket that has not authenticated within ``auth_deadline`` seconds is closed (after an
  ``auth_error`` if it joined ``/sdk``), and at most ``max_unauthenticated`` such sockets are open
  at once (more are refused at the Engine.IO handshake, 401): sockets held open without
  authenticating cost little, and not for long.
- Browsers may connect only from the allowed origins: loopback ones by default.
- Abuse must not stall the event loop the other clients share. New Engine.IO sessions are paced
  (``HANDSHAKE_RATE`` a second after a burst): a storm of hundreds of connections, refused ones
  included, is spread out instead of handled in one go. A packet over ``BIG_PACKET`` bytes is not
  decoded (no JSON parse) from a socket not authenticated yet, nor for an event no handler knows:
  its name is read from its head, and its payload reaches the handlers as :class:`NotDecoded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import engineio
import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from fake_server.abbreviate import NotDecoded
from fake_server.redact import redact_text

__all__ = ["RESERVED_EVENTS", "GuardedServer", "OneLineLogs", "Pace", "loopback_origin", "origin_policy", "peek_event"]

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "message", "newListener", "removeListener", "*"}
)
LINE_LIMIT = 300
ADMITTED = "fake_server_admitted"  # a record attribute: counted against the budget already
MAX_NESTING = 32  # a packet with this many "[" in a row is refused before its JSON is parsed
MAX_UNAUTHENTICATED = 128
CLOSE_BOUND = 2.0  # seconds the auth deadline waits for a socket's CLOSE packet to go out
WEBSOCKET_KEY = "fake_server.websocket"
HANDSHAKE_RATE = 500.0  # new Engine.IO sessions per second, after a burst of HANDSHAKE_BURST
HANDSHAKE_BURST = 25
BIG_PACKET = 64 * 1024  # bytes; a WebSocket stream_audio chunk is ~13 KB of base64
# A Socket.IO EVENT packet's head (Engine.IO's "4" already stripped): 2[/namespace,][ack id]["name"
_DEEP = "[" * MAX_NESTING
_EVENT_HEAD = re.compile(r'2(/[^,\[\]"]{0,200},)?[0-9]{0,20}\["([^"\\]{0,256})"')


def peek_event(data: str) -> tuple[str, str] | None:
    """(namespace, name) of a Socket.IO EVENT packet, read from its head without decoding the rest;
    None for any other packet, or a name with escapes."""
    head = _EVENT_HEAD.match(data, 0, 512)
    if head is None:
        return None
    return (head.group(1) or "/,")[:-1], head.group(2)


class Pace:
    """A server-wide pace: ``rate`` turns a second after a ``burst``; :meth:`take` waits for one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.burst = burst
        self._next = 0.0
        self.waited = 0  # turns that had to wait

    async def take(self) -> None:
        now = time.monotonic()
        slot = max(self._next, now - self.burst * self.interval)
        self._next = slot + self.interval
        if slot > now:
            self.waited += 1
        await asyncio.sleep(max(0.0, slot - now))  # a turn even when within the burst: others go first


class OneLineLogs(logging.Filter):
    """Every record one redacted line (a traceback becomes ``Type: message``), at most ``burst``
    lines per ``period`` seconds; the next line let through says how many were held back."""

    def __init__(self, burst: int = 5, period: float = 10.0) -> None:
        super().__init__()
        self.burst, self.period = burst, period
        self._window_start = 0.0
        self._in_window = 0
        self.suppressed = 0

    def admit(self) -> bool:
        """Counts one line against the budget: whether it may go out (else it is held back)."""
        now = time.monotonic()
        if now - self._window_start >= self.period:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self.burst:
            self.suppressed += 1
            return False
        self._in_window += 1
        return True

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, ADMITTED, False) and not self.admit():
            return False
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        message = redact_text(message.replace("\n", " "))[:LINE_LIMIT]
        if self.suppressed:
            message += f" ({self.suppressed} similar lines held back)"
            self.suppressed = 0
        record.msg, record.args = message, None
        return True


_ONE_LINE = OneLineLogs()  # one budget for all three loggers: a flood is a flood, whoever reports it


def _warn(message: str, *args: Any) -> None:
    """``log.warning`` that costs nearly nothing once the budget of lines is spent (a flood of
    malformed frames made a record for each, only for the filter to drop it)."""
    if _ONE_LINE.admit():
        log.warning(message, *args, extra={ADMITTED: True})


def _quiet_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)  # python-socketio logs every packet at INFO
    if _ONE_LINE not in logger.filters:
        logger.addFilter(_ONE_LINE)
    return logger


def loopback_origin(origin: str | None) -> bool:
    """True for no Origin (not a browser) and for http(s) origins on localhost or a loopback address."""
    if origin is None:
        return True
    try:
        parts = urllib.parse.urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_policy(allowed: Sequence[str] | None) -> str | Callable[[str | None], bool]:
    """What python-socketio's ``cors_allowed_origins`` gets: ``"*"``, or loopback plus ``allowed``."""
    extra = frozenset(o.rstrip("/") for o in allowed or ())
    if "*" in extra:
        return "*"
    return lambda origin: loopback_origin(origin) or (origin or "").rstrip("/") in extra


log = _quiet_logger("fake_server.wire")


class _GuardedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """Skips frames that are not Engine.IO packets, instead of letting them end the connection;
    findable from its environ, so the auth deadline can close the TCP connection itself."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        environ[WEBSOCKET_KEY] = self
        return await super().__call__(environ)

    async def wait(self) -> Any:
        while True:
            data = await super().wait()
            self.server.frames += 1
            try:
                eio_packet.Packet(encoded_packet=data)
            except Exception as exc:
                _warn("dropped a malformed Engine.IO frame: %s: %s", type(exc).__name__, exc)
                continue
            return data


class _GuardedEngine(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        driver: dict[str, Any] = getattr(self, "_async")  # noqa: B009 (untyped in engineio)
        self._async = {**driver, "websocket": _GuardedWebSocket}  # the driver's table is shared: copy it
        self.frames = 0  # WebSocket frames and HTTP requests received so far
        self.pings: dict[str, asyncio.Task[Any]] = {}  # each socket's ping task (it sleeps ping_interval)
        self.handshakes = Pace(HANDSHAKE_RATE, HANDSHAKE_BURST)
        self.admit: Callable[[], bool] = lambda: True

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        task = super().start_background_task(target, *args, **kwargs)
        sid = getattr(getattr(target, "__self__", None), "sid", None)
        if getattr(target, "__name__", "") == "_send_ping" and isinstance(sid, str):
            self.pings[sid] = task  # cancelled when its socket closes: it held the socket 25 s longer
            task.add_done_callback(lambda done: self._ping_done(sid, done))
        return task

    def _ping_done(self, sid: str, task: asyncio.Task[Any]) -> None:
        if self.pings.get(sid) is task:
            del self.pings[sid]

    async def handle_request(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.frames += 1
        if getattr(request, "method", None) != "GET" or "sid" in getattr(request, "query", {"sid": ""}):
            return await super().handle_request(request, *args, **kwargs)
        # A new Engine.IO session: a storm of them is spread out (refusing costs too), and one over
        # the cap of sockets not authenticated yet is refused before Engine.IO makes a socket for it.
        await self.handshakes.take()
        if not self.admit():
            return web.json_response("too many connections are not authenticated yet", status=401)
        return await super().handle_request(request, *args, **kwargs)


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's AsyncServer (aiohttp) with the guards of the module docstring.

    ``unknown_event(name, sid, *args)`` receives the events with reserved or missing names;
    ``authenticated(eio_sid)`` and ``overdue(eio_sid)`` implement the auth deadline.
    """

    def __init__(
        self,
        *,
        auth_deadline: float,
        allowed_origins: Sequence[str] | None,
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            async_mode="aiohttp",
            cors_allowed_origins=origin_policy(allowed_origins),
            logger=_quiet_logger("fake_server.wire.socketio"),
            engineio_logger=_quiet_logger("fake_server.wire.engineio"),
            **kwargs,
        )
        self.auth_deadline = auth_deadline
        self.max_unauthenticated = max_unauthenticated
        self.refused = 0  # Engine.IO handshakes refused: too many sockets not authenticated yet
        self.unknown_event: Callable[..., Awaitable[None]] | None = None
        self.known_events: frozenset[str] = frozenset()  # events a handler reads: decoded even when large
        self.authenticated: Callable[[str], bool] = lambda _eio_sid: True
        self.overdue: Callable[[str], Awaitable[None]] | None = None
        self._deadlines: dict[str, asyncio.Task[None]] = {}
        self.eio.admit = self._admit

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _GuardedEngine

    @property
    def frames(self) -> int:
        """WebSocket frames and HTTP requests received so far: a measure of the load."""
        return int(self.eio.frames)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            if len(data) > BIG_PACKET and await self._big_packet(eio_sid, data):
                return
            if isinstance(data, str) and _DEEP in data:  # a JSON bomb: refused before json.loads recurses
                raise ValueError(f"arrays nested more than {MAX_NESTING} deep")
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            self._binary_packet.pop(eio_sid, None)  # a half-received binary event must not linger
            _warn("dropped a Socket.IO packet that failed: %s: %s", type(exc).__name__, exc)

    async def _big_packet(self, eio_sid: str, data: str | bytes) -> bool:
        """Handles a large packet without decoding it, if nobody may get it decoded; False otherwise."""
        trusted = self.authenticated(eio_sid)
        head = peek_event(data) if isinstance(data, str) and eio_sid not in self._binary_packet else None
        if head is None:
            if trusted:
                return False
            self._binary_packet.pop(eio_sid, None)
            raise ValueError(f"a {len(data)}-byte packet from a socket not authenticated yet")
        namespace, name = head
        if trusted and name in self.known_events:
            return False
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace) and self.unknown_event is not None:
            await self.unknown_event(name, sid, NotDecoded(len(data)))
        return True

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if isinstance(name, str) and name not in RESERVED_EVENTS:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace) or self.unknown_event is None:
            return
        args = data[1:] if isinstance(data, list) else []
        await self.unknown_event(name if isinstance(name, str) else f"<{type(name).__name__}>", sid, *args)

    @property
    def unauthenticated(self) -> int:
        """Sockets open and not authenticated yet."""
        return len(self._deadlines)

    def _admit(self) -> bool:
        """Whether one more socket may be open without having authenticated (else it is refused)."""
        if len(self._deadlines) < self.max_unauthenticated:
            return True
        self.refused += 1
        _warn("refused a connection: %d sockets have not authenticated yet", len(self._deadlines))
        return False

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
        if not self._admit():  # checked at the handshake already; here for sessions that raced past it
            return False
        result = await super()._handle_eio_connect(eio_sid, environ)
        self._deadlines[eio_sid] = asyncio.ensure_future(self._enforce_deadline(eio_sid))
        return result

    def authenticated_now(self, sid: str, namespace: str) -> None:
        """The socket of ``sid`` authenticated: its deadline is off, and it counts no more."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        if eio_sid is None:
            return
        deadline = self._deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        for tasks in (self._deadlines, self.eio.pings):
            task = tasks.pop(eio_sid, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _enforce_deadline(self, eio_sid: str) -> None:
        await asyncio.sleep(self.auth_deadline)
        self._deadlines.pop(eio_sid, None)
        if self.authenticated(eio_sid):
            return
        websocket = self.environ.get(eio_sid, {}).get(WEBSOCKET_KEY)
        try:
            if self.overdue is not None:
                await self.overdue(eio_sid)
            # Engine.IO's close waits until its CLOSE packet is sent: forever for a polling socket
            # that never polls again (the socket, its queue and this task stayed alive)
            await asyncio.wait_for(self.eio.disconnect(eio_sid), CLOSE_BOUND)
        except Exception as exc:  # the socket went away meanwhile, or its CLOSE was never fetched
            log.debug("closing the unauthenticated socket %s: %s", eio_sid, type(exc).__name__)
        self.eio.sockets.pop(eio_sid, None)
        if websocket is not None:  # Engine.IO's close leaves the TCP connection to the client
            with contextlib.suppress(Exception):
                await websocket.close()

    def cancel_deadlines(self) -> None:
        for task in self._deadlines.values():
            task.cancel()
        self._deadlines.clear()
