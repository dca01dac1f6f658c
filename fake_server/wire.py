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
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from fake_server.redact import redact_text

__all__ = ["RESERVED_EVENTS", "GuardedServer", "OneLineLogs", "loopback_origin", "origin_policy"]

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "message", "newListener", "removeListener", "*"}
)
LINE_LIMIT = 300
MAX_UNAUTHENTICATED = 128
WEBSOCKET_KEY = "fake_server.websocket"


class OneLineLogs(logging.Filter):
    """Every record one redacted line (a traceback becomes ``Type: message``), at most ``burst``
    lines per ``period`` seconds; the next line let through says how many were held back."""

    def __init__(self, burst: int = 5, period: float = 10.0) -> None:
        super().__init__()
        self.burst, self.period = burst, period
        self._window_start = 0.0
        self._in_window = 0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._window_start >= self.period:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self.burst:
            self.suppressed += 1
            return False
        self._in_window += 1
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
            try:
                eio_packet.Packet(encoded_packet=data)
            except Exception as exc:
                log.warning("dropped a malformed Engine.IO frame: %s: %s", type(exc).__name__, exc)
                continue
            return data


class _GuardedEngine(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        driver: dict[str, Any] = getattr(self, "_async")  # noqa: B009 (untyped in engineio)
        self._async = {**driver, "websocket": _GuardedWebSocket}  # the driver's table is shared: copy it


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
        self.authenticated: Callable[[str], bool] = lambda _eio_sid: True
        self.overdue: Callable[[str], Awaitable[None]] | None = None
        self._deadlines: dict[str, asyncio.Task[None]] = {}

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _GuardedEngine

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            self._binary_packet.pop(eio_sid, None)  # a half-received binary event must not linger
            log.warning("dropped a Socket.IO packet that failed: %s: %s", type(exc).__name__, exc)

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

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
        if len(self._deadlines) >= self.max_unauthenticated:
            self.refused += 1
            log.warning("refused a connection: %d sockets have not authenticated yet", len(self._deadlines))
            return False
        result = await super()._handle_eio_connect(eio_sid, environ)
        self._deadlines[eio_sid] = asyncio.ensure_future(self._enforce_deadline(eio_sid))
        return result

    def authenticated_now(self, sid: str, namespace: str) -> None:
        """The socket of ``sid`` authenticated: its deadline is off, and it counts no more."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        deadline = self._deadlines.pop(eio_sid, None) if eio_sid is not None else None
        if deadline is not None:
            deadline.cancel()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        deadline = self._deadlines.pop(eio_sid, None)
        if deadline is not None and deadline is not asyncio.current_task():
            deadline.cancel()
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
            await self.eio.disconnect(eio_sid)
            if websocket is not None:  # Engine.IO's close leaves the TCP connection to the client
                await websocket.close()
        except Exception as exc:  # the socket went away meanwhile
            log.debug("closing the unauthenticated socket %s: %s", eio_sid, exc)

    def cancel_deadlines(self) -> None:
        for task in self._deadlines.values():
            task.cancel()
        self._deadlines.clear()
