"""The Socket.IO side: /sdk over WebSocket, authentication, and the client's own reconnect policy.

Socket.IO's built-in reconnection is off (CONN-1): after a reconnect the session must be
re-authenticated, and after ``session_timeout`` it must not come back at all (CONN-7), which
only this layer knows.

Every phase of opening a socket is bounded and observed: TCP connect, WebSocket upgrade, Engine.IO
open and namespace CONNECT together by ``connect_timeout``, then ``session_info`` by
``session_info_timeout``; closing it by ``leave_timeout``. A timeout names the phase it stopped in
and what had been seen. Each socket has its own aiohttp session, closed with it, so a server that
never answers cannot keep a connection open after we gave up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

from pytest_estuary.client.config import ClientConfig
from pytest_estuary.client.errors import ErrorCode, EstuaryError, EventTimeout
from pytest_estuary.client.events import (
    CLIENT_EVENTS,
    AuthError,
    Connected,
    Disconnected,
    PayloadError,
    SessionInfo,
    parse,
)
from pytest_estuary.client.teardown import cancel_and_wait, describe, report_failure
from pytest_estuary.tls import diagnose_url

__all__ = ["NAMESPACE", "RESERVED_EVENTS", "Signalling", "backoff"]

log = logging.getLogger("pytest_estuary.client")
NAMESPACE = "/sdk"
Dispatch = Callable[[str, Any], None]
# Names a server must not use for its events: Socket.IO's own (python-socketio would call our
# disconnect handler for an event named "disconnect") and the events this client makes itself.
SOCKETIO_RESERVED = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", "__disconnect_final"}
)
RESERVED_EVENTS = SOCKETIO_RESERVED | CLIENT_EVENTS


def backoff(attempt: int, base: float = 0.25, cap: float = 5.0) -> float:
    """Delay before reconnect attempt ``attempt`` (1-based): 0.25, 0.5, 1, 2, 4, 5, 5…"""
    return float(min(cap, base * 2 ** (attempt - 1)))


class _GuardedClient(socketio.AsyncClient):  # type: ignore[misc]  # python-socketio has no type hints
    """A Socket.IO client that hands server events with reserved names to ``on_reserved`` instead of
    dispatching them (python-socketio would run its own handlers for them)."""

    def __init__(self, on_reserved: Callable[[str, Any], None], **options: Any) -> None:
        super().__init__(**options)
        self._on_reserved = on_reserved

    async def _handle_event(self, namespace: str | None, id: int | None, data: list[Any]) -> None:
        name = data[0] if data else None
        if not isinstance(name, str) or name in RESERVED_EVENTS:
            self._on_reserved(str(name), data[1] if len(data) > 1 else None)
            return
        await super()._handle_event(namespace, id, data)


class _Progress:
    """What one socket has got through so far, for the message of a timeout."""

    def __init__(self) -> None:
        self.tcp = False
        self.http_status: int | None = None
        self.response: aiohttp.ClientResponse | None = None  # of the upgrade: closed with the socket
        self.events: list[str] = []

    def trace(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def connected(_s: aiohttp.ClientSession, _c: Any, _p: aiohttp.TraceConnectionCreateEndParams) -> None:
            self.tcp = True

        async def answered(_s: aiohttp.ClientSession, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
            self.http_status = params.response.status
            self.response = params.response

        trace.on_connection_create_end.append(connected)
        trace.on_request_end.append(answered)
        return trace

    def phase(self, sio: socketio.AsyncClient) -> tuple[str, list[str]]:
        """The phase the socket is stuck in, and what it saw before."""
        seen: list[str] = []
        if not self.tcp:
            return "TCP connect", ["no TCP connection"]
        seen.append("TCP connected")
        if self.http_status is None:
            return "WebSocket upgrade", [*seen, "no HTTP answer to the upgrade request"]
        seen.append(f"HTTP {self.http_status} to the upgrade")
        if sio.eio.sid is None:
            return "Engine.IO open", [*seen, "no Engine.IO OPEN packet"]
        seen.append("Engine.IO open")
        if NAMESPACE not in sio.namespaces:
            return "namespace CONNECT", [*seen, f"no CONNECT acknowledgement for {NAMESPACE}"]
        seen.append(f"namespace {NAMESPACE} connected")
        return "session_info", [*seen, *(f"event {e}" for e in self.events[-10:])]


class Signalling:
    """One logical session over successive sockets. ``dispatch(name, payload)`` gets every server
    event (typed), plus ``connected``/``disconnected``/``reconnecting``/``reconnect_failed``/
    ``protocol_error``/``teardown_failed``."""

    def __init__(self, config: ClientConfig, dispatch: Dispatch) -> None:
        self.config = config
        self.dispatch = dispatch
        self.session: SessionInfo | None = None
        self.session_ended = False  # session_timeout seen: never reconnect (CONN-7)
        self._sio: socketio.AsyncClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = False
        self._auth: asyncio.Future[SessionInfo] | None = None
        self._progress = _Progress()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._dropping: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected and self.session is not None

    @property
    def open_sockets(self) -> int:
        """Sockets (aiohttp sessions) this session still holds: 0 or 1, never more."""
        return 0 if self._http is None or self._http.closed else 1

    async def connect(self) -> SessionInfo:
        """Open the socket and authenticate; AUTH_FAILED on auth_error, CONNECTION_* otherwise."""
        self._closing = False
        self.session_ended = False
        return await self._open(reconnect=False)

    async def _open(self, *, reconnect: bool) -> SessionInfo:
        cfg = self.config
        progress = self._progress = _Progress()
        # trust_env: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as CI runners set them
        # aiohttp's shared default context unless one was configured: building one loads the system store
        connector = aiohttp.TCPConnector(ssl=cfg.ssl_context if cfg.ssl_context is not None else True)
        http = aiohttp.ClientSession(trace_configs=[progress.trace()], connector=connector, trust_env=True)
        sio = _GuardedClient(
            self._on_reserved,
            reconnection=False,
            logger=False,
            engineio_logger=False,
            http_session=http,
            request_timeout=cfg.leave_timeout + 1.0,  # the WebSocket close handshake; _drop's own bound fires first
        )
        self._register(sio)
        loop = asyncio.get_running_loop()
        self._auth = loop.create_future()
        self._sio, self._http = sio, http
        try:
            await self._connect_socket(sio, progress)
            if cfg.auth_style == "event":
                await sio.emit("authenticate", cfg.auth(), namespace=NAMESPACE)
            try:
                info = await asyncio.wait_for(asyncio.shield(self._auth), cfg.session_info_timeout)
            except TimeoutError:
                state = "socket still connected" if sio.connected else "socket closed"
                _phase, seen = progress.phase(sio)
                raise EventTimeout(
                    "session_info or auth_error",
                    cfg.session_info_timeout,
                    [*seen, state],
                    code=ErrorCode.CONNECTION_TIMEOUT,
                    phase="connect(): session_info",
                    setting="session_info_timeout",
                ) from None
        except BaseException:
            if self._sio is sio:
                self._sio = None
            await self._drop(sio, http, progress, step=None)
            if self._http is http:
                self._http = None
            raise
        self.session = info
        self.dispatch("connected", Connected(info, reconnect=reconnect))
        return info

    async def _connect_socket(self, sio: socketio.AsyncClient, progress: _Progress) -> None:
        """TCP connect, WebSocket upgrade, Engine.IO open, namespace CONNECT: within connect_timeout."""
        cfg = self.config
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                await sio.connect(
                    cfg.server_url,
                    namespaces=[NAMESPACE],
                    transports=["websocket"],
                    socketio_path=cfg.socketio_path,
                    auth=cfg.auth() if cfg.auth_style == "connect" else None,
                    wait_timeout=cfg.connect_timeout + 1.0,  # our own bound (above) is the one that fires
                )
        except TimeoutError:
            phase, seen = progress.phase(sio)
            raise EventTimeout(
                f"{phase} with {cfg.server_url}",
                cfg.connect_timeout,
                seen,
                code=ErrorCode.CONNECTION_TIMEOUT,
                phase=f"connect(): {phase}",
                setting="connect_timeout",
            ) from None
        except socketio.exceptions.ConnectionError as exc:
            phase, seen = progress.phase(sio)
            tls = await self._tls_problem(exc)
            raise EstuaryError(
                ErrorCode.CONNECTION_FAILED,
                f"connect(): TLS: {tls}"
                if tls
                else f"connect(): {phase}: could not connect to {cfg.server_url} (namespace {NAMESPACE}): "
                f"{describe(exc.__cause__ or exc)}; saw: {', '.join(seen)}",
            ) from exc

    async def _tls_problem(self, exc: BaseException) -> str | None:
        """python-socketio hides why an https connect failed; for a TLS failure under it, say what
        is wrong with the certificate or the port, in words (one more bounded handshake)."""
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, aiohttp.ClientError):
            cause = cause.__cause__ or cause.__context__
        cfg = self.config
        secure = cfg.server_url.startswith(("https:", "wss:"))
        if secure and not isinstance(cause, aiohttp.ClientSSLError):
            return None  # refused, unreachable…: not TLS's doing, the plain message says it
        # http:// to a TLS port: a TLS server refuses the upgrade (nginx: 400) or hangs up
        answered_oddly = aiohttp.WSServerHandshakeError | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError
        if not secure and not (isinstance(cause, answered_oddly) and type(cause) is not aiohttp.ClientConnectorError):
            return None
        return await diagnose_url(
            cfg.server_url, cfg.tls(), what="the Estuary server", timeout=cfg.connect_timeout if secure else 1.0,
            remedy="ca_file=",
        )  # fmt: skip

    def _register(self, sio: socketio.AsyncClient) -> None:
        async def on_disconnect(reason: Any = None) -> None:
            await self._on_disconnect(sio, str(reason) if reason is not None else "unknown")

        async def on_any(event: str, *args: Any) -> None:
            self._on_event(event, args[0] if args else None)

        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on("*", on_any, namespace=NAMESPACE)

    def _on_reserved(self, event: str, raw: Any) -> None:
        """A server event with a reserved name: refused, reported, never acted upon."""
        log.warning("the server sent an event with the reserved name %r; ignored", event)
        self.dispatch(
            "protocol_error", PayloadError(event, "<event name>", "a name not reserved by Socket.IO or the client", raw)
        )

    def _on_event(self, event: str, raw: Any) -> None:
        self._progress.events.append(event)
        pending = self._auth is not None and not self._auth.done()
        try:
            payload = parse(event, raw)
        except PayloadError as exc:
            log.warning("malformed %s from the server: %s", event, exc.message)
            if pending and event == "session_info":
                assert self._auth is not None
                self._auth.set_exception(exc)
            elif pending and event == "auth_error":  # a refusal all the same, however it is spelt
                assert self._auth is not None
                self._auth.set_exception(
                    EstuaryError(ErrorCode.AUTH_FAILED, f"authentication refused (malformed auth_error: {exc.message})")
                )
            self.dispatch("protocol_error", exc)
            return
        if pending and isinstance(payload, SessionInfo):
            assert self._auth is not None
            self._auth.set_result(payload)
        elif pending and isinstance(payload, AuthError):
            assert self._auth is not None
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
        http, self._http = self._http, None
        if http is not None:
            asyncio.get_running_loop().call_soon(self._close_later, sio, http, self._progress)
        if self._closing:
            return
        will = self.config.reconnect and not self.session_ended and self.config.max_reconnect_attempts > 0
        self.dispatch("disconnected", Disconnected(reason, will_reconnect=will))
        if will:
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    def _close_later(self, sio: socketio.AsyncClient, http: aiohttp.ClientSession, progress: _Progress) -> None:
        """The server dropped the socket: release its aiohttp session once python-socketio is done."""
        task = asyncio.ensure_future(self._drop(sio, http, progress, step="closing a dropped socket"))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

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
        """Client-initiated close (no reconnect afterwards), bounded by leave_timeout; a close that
        fails is reported (teardown_failed), not raised."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        # a cancelled reconnect attempt still closes its own socket (≤ leave_timeout): allow for that
        error = await cancel_and_wait(task, 2 * self.config.leave_timeout)
        if error is not None:
            report_failure(self.dispatch, "stopping the reconnect loop", describe(error))
        sio, self._sio = self._sio, None
        http, self._http = self._http, None
        self.session = None
        if sio is not None and http is not None:
            await self._drop(sio, http, self._progress, step="closing the socket")
        for dropping in list(self._dropping):
            await cancel_and_wait(dropping, self.config.leave_timeout)

    async def _drop(
        self, sio: socketio.AsyncClient, http: aiohttp.ClientSession, progress: _Progress, *, step: str | None
    ) -> None:
        """Close ``sio`` within leave_timeout, then its aiohttp session whatever happened (so no
        connection outlives it). ``step`` names the teardown step to report a failure under; None
        when the close follows a failed open (that error is the one that matters)."""
        bound = self.config.leave_timeout
        failure: str | None = None
        try:
            async with asyncio.timeout(bound):
                await sio.disconnect()
                await sio.eio.wait()  # the Engine.IO tasks, not sio.wait(): that one sleeps 1 s
        except TimeoutError:
            failure = f"the server did not complete the close within {bound:g} s (leave_timeout)"
        except Exception as exc:
            failure = describe(exc)
        finally:
            if progress.response is not None:
                progress.response.close()  # python-socketio loses it when the Engine.IO open never comes
            await http.close()  # closes the TCP connection even when the server never answered
            for background in (sio.eio.read_loop_task, sio.eio.write_loop_task):
                if background is not None and not background.done():
                    await cancel_and_wait(background, bound)
        if failure is not None and step is not None:
            report_failure(self.dispatch, step, failure)
