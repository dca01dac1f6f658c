"""The Socket.IO side: /sdk over WebSocket, authentication, and the client's own reconnect policy.

Socket.IO's built-in reconnection is off (CONN-1): after a reconnect the session must be
re-authenticated, and after ``session_timeout`` it must not come back at all (CONN-7), which
only this layer knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import socketio

from pytest_estuary.client.config import ClientConfig
from pytest_estuary.client.errors import ErrorCode, EstuaryError
from pytest_estuary.client.events import (
    AuthError,
    Connected,
    Disconnected,
    PayloadError,
    SessionInfo,
    parse,
)

__all__ = ["NAMESPACE", "Signalling", "backoff"]

log = logging.getLogger("pytest_estuary.client")
NAMESPACE = "/sdk"
Dispatch = Callable[[str, Any], None]


def backoff(attempt: int, base: float = 0.25, cap: float = 5.0) -> float:
    """Delay before reconnect attempt ``attempt`` (1-based): 0.25, 0.5, 1, 2, 4, 5, 5…"""
    return float(min(cap, base * 2 ** (attempt - 1)))


class Signalling:
    """One logical session over successive sockets. ``dispatch(name, payload)`` gets every server
    event (typed), plus ``connected``/``disconnected``/``reconnecting``/``reconnect_failed``/``protocol_error``."""

    def __init__(self, config: ClientConfig, dispatch: Dispatch) -> None:
        self.config = config
        self.dispatch = dispatch
        self.session: SessionInfo | None = None
        self.session_ended = False  # session_timeout seen: never reconnect (CONN-7)
        self._sio: socketio.AsyncClient | None = None
        self._closing = False
        self._auth: asyncio.Future[SessionInfo] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected and self.session is not None

    async def connect(self) -> SessionInfo:
        """Open the socket and authenticate; AUTH_FAILED on auth_error, CONNECTION_* otherwise."""
        self._closing = False
        self.session_ended = False
        return await self._open(reconnect=False)

    async def _open(self, *, reconnect: bool) -> SessionInfo:
        cfg = self.config
        sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        self._register(sio)
        loop = asyncio.get_running_loop()
        self._auth = loop.create_future()
        self._sio = sio
        try:
            try:
                await sio.connect(
                    cfg.server_url,
                    namespaces=[NAMESPACE],
                    transports=["websocket"],
                    auth=cfg.auth() if cfg.auth_style == "connect" else None,
                    wait_timeout=cfg.connect_timeout,
                )
            except socketio.exceptions.ConnectionError as exc:
                raise EstuaryError(
                    ErrorCode.CONNECTION_FAILED, f"could not connect to {cfg.server_url} (namespace {NAMESPACE}): {exc}"
                ) from exc
            if cfg.auth_style == "event":
                await sio.emit("authenticate", cfg.auth(), namespace=NAMESPACE)
            try:
                info = await asyncio.wait_for(asyncio.shield(self._auth), cfg.session_info_timeout)
            except TimeoutError:
                raise EstuaryError(
                    ErrorCode.CONNECTION_TIMEOUT,
                    f"no session_info or auth_error within {cfg.session_info_timeout:.1f} s after connecting "
                    f"(socket {'still connected' if sio.connected else 'closed'})",
                ) from None
        except BaseException:
            self._sio = None
            await self._drop(sio)
            raise
        self.session = info
        self.dispatch("connected", Connected(info, reconnect=reconnect))
        return info

    def _register(self, sio: socketio.AsyncClient) -> None:
        async def on_disconnect(reason: Any = None) -> None:
            await self._on_disconnect(sio, str(reason) if reason is not None else "unknown")

        async def on_any(event: str, *args: Any) -> None:
            self._on_event(event, args[0] if args else None)

        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on("*", on_any, namespace=NAMESPACE)

    def _on_event(self, event: str, raw: Any) -> None:
        try:
            payload = parse(event, raw)
        except PayloadError as exc:
            log.warning("malformed %s from the server: %s", event, exc.message)
            if event == "session_info" and self._auth is not None and not self._auth.done():
                self._auth.set_exception(exc)
            self.dispatch("protocol_error", exc)
            return
        if event == "session_info" and self._auth is not None and not self._auth.done():
            self._auth.set_result(payload)  # type: ignore[arg-type]
        elif event == "auth_error" and self._auth is not None and not self._auth.done():
            assert isinstance(payload, AuthError)
            self._auth.set_exception(EstuaryError(ErrorCode.AUTH_FAILED, f"authentication refused: {payload.error}"))
        elif event == "session_timeout":
            self.session_ended = True
        self.dispatch(event, payload)

    async def _on_disconnect(self, sio: socketio.AsyncClient, reason: str) -> None:
        if sio is not self._sio:
            return  # an old socket
        self.session, self._sio = None, None
        if self._auth is not None and not self._auth.done():
            self._auth.set_exception(
                EstuaryError(
                    ErrorCode.CONNECTION_FAILED, f"the server closed the socket before session_info ({reason})"
                )
            )
        if self._closing:
            return
        will = self.config.reconnect and not self.session_ended and self.config.max_reconnect_attempts > 0
        self.dispatch("disconnected", Disconnected(reason, will_reconnect=will))
        if will:
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        last: Exception | None = None
        for attempt in range(1, self.config.max_reconnect_attempts + 1):
            await asyncio.sleep(backoff(attempt))
            if self._closing or self.session_ended:
                return
            self.dispatch("reconnecting", attempt)
            try:
                await self._open(reconnect=True)
                return
            except EstuaryError as exc:
                last = exc
                log.info("reconnect attempt %d failed: %s", attempt, exc.message)
                if exc.code is ErrorCode.AUTH_FAILED:
                    break
        self.dispatch("reconnect_failed", last)

    async def emit(self, event: str, payload: dict[str, Any] | None = None) -> None:
        """Send one event; no payload is sent as ``null`` (the TypeScript SDK's convention)."""
        sio = self._sio
        if sio is None or not self.connected:
            raise EstuaryError(ErrorCode.NOT_CONNECTED, f"cannot send {event}: not connected (call connect() first)")
        await sio.emit(event, (None,) if payload is None else payload, namespace=NAMESPACE)

    async def close(self) -> None:
        """Client-initiated close: no reconnect afterwards."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        sio, self._sio = self._sio, None
        self.session = None
        if sio is not None:
            await self._drop(sio)

    @staticmethod
    async def _drop(sio: socketio.AsyncClient) -> None:
        with contextlib.suppress(Exception):
            await sio.disconnect()
        with contextlib.suppress(Exception):  # the engine.io tasks, not sio.wait(): that one sleeps 1 s
            await asyncio.wait_for(sio.eio.wait(), 2.0)
