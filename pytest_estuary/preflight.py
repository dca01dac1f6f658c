"""Before a live run: can the target be tested at all? One diagnosis within seconds if not.

Checks, in order, each bounded: the host accepts TCP (through the HTTP proxy the environment
names, if any: a CONNECT tunnel), an https URL completes a verified TLS handshake (else what is
wrong with the certificate or the port), a Socket.IO server answers at the Socket.IO path with
the ``/sdk`` namespace, the API key is accepted (``session_info``, or the ``auth_error`` text),
and whether LiveKit voice is offered (informational; a ``wss://`` LiveKit URL's TLS is checked
with the same words, and the cases that join a room report it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import socketio

from pytest_estuary.proxies import ProxyError, open_tunnel, proxy_for, proxy_shown, proxy_variable
from pytest_estuary.settings import redact_url
from pytest_estuary.tls import TlsEndpoint, diagnose_tls, speaks_tls, ssl_context

__all__ = ["PreflightResult", "preflight", "run_preflight"]

NAMESPACE = "/sdk"
TCP_TIMEOUT = 3.0
SOCKETIO_TIMEOUT = 5.0
LIVEKIT_PROBE = 3.0


@dataclass
class PreflightResult:
    """What the preflight found; ``diagnosis`` says why the target cannot be tested."""

    ok: bool
    diagnosis: str | None = None
    summary: str | None = None
    livekit: str | None = None
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    secure = parts.scheme in ("https", "wss")
    return parts.hostname or "localhost", parts.port or (443 if secure else 80)


async def _tcp(url: str) -> str | None:
    host, port = _endpoint(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TCP_TIMEOUT)
    except TimeoutError:
        return f"no answer from {host}:{port} within {TCP_TIMEOUT:.0f} s (TCP connect timed out)"
    except ConnectionRefusedError:
        return f"connection refused at {host}:{port} (nothing accepts connections there)"
    except socket.gaierror as exc:
        return f"host name {host!r} not found ({exc.strerror})"
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        return f"{reason.lower()} at {host}:{port}"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def _reach(url: str, context: ssl.SSLContext) -> str | None:
    """TCP (directly or through the environment's proxy), then TLS for an https URL."""
    proxy = proxy_for(url)
    where = TlsEndpoint.of(url)
    if proxy is None:
        problem = await _tcp(url)
        if problem:
            return f"target unreachable: {problem}"
        if where.secure:
            return await diagnose_tls(url, context, what="the Estuary server")
        return None
    if not where.secure:  # plain HTTP goes to the proxy as absolute-URI requests, not a tunnel
        problem = await _tcp(proxy)
        return f"the proxy {proxy_shown(proxy)} (from HTTP_PROXY) cannot be reached: {problem}" if problem else None
    try:
        _reader, writer = await open_tunnel(proxy, where.host, where.port, TCP_TIMEOUT, variable=proxy_variable(url))
    except ProxyError as exc:
        return f"target unreachable through the proxy: {exc}"
    return await diagnose_tls(url, context, what="the Estuary server", tunnel=writer)


async def preflight(
    url: str,
    api_key: str,
    character_id: str,
    player_id: str,
    timeout: float,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    socketio_path: str = "/socket.io/",
) -> PreflightResult:
    """Probe ``url``; ``ok`` is False with a one-line diagnosis when the suite cannot run."""
    started = time.monotonic()
    shown = redact_url(url)
    result = PreflightResult(ok=False)
    context = ssl_context(ca_file)

    def done(diagnosis: str | None) -> PreflightResult:
        result.ok = diagnosis is None
        result.diagnosis = diagnosis
        result.seconds = round(time.monotonic() - started, 3)
        return result

    problem = await _reach(url, context)
    if problem:
        return done(problem)
    result.steps.append("tls" if TlsEndpoint.of(url).secure else "tcp")
    received: dict[str, Any] = {}
    arrived = asyncio.Event()

    def http_session() -> aiohttp.ClientSession:  # Engine.IO closes it with the connection
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context), trust_env=True)

    sio = socketio.AsyncClient(reconnection=False, http_session=http_session)

    async def on_any(event: str, *args: Any) -> None:
        received.setdefault(event, args[0] if args else None)
        arrived.set()

    sio.on("*", on_any, namespace=NAMESPACE)
    auth = {
        "api_key": api_key,
        "character_id": character_id,
        "player_id": f"{player_id}-preflight-{uuid.uuid4().hex[:6]}",
    }
    try:
        try:
            await asyncio.wait_for(
                sio.connect(
                    url, namespaces=[NAMESPACE], transports=["websocket"], auth=auth, wait_timeout=5,
                    socketio_path=socketio_path,
                ),
                SOCKETIO_TIMEOUT + 1,
            )  # fmt: skip
        except (socketio.exceptions.ConnectionError, TimeoutError, OSError) as exc:
            where = TlsEndpoint.of(url)
            if not where.secure and proxy_for(url) is None and await speaks_tls(where):
                secure = "https" if url.startswith("http") else "wss"
                return done(
                    f"{shown} is an {secure} (TLS) server, but the URL says {url.split(':', 1)[0]}:// "
                    f"(use {secure}://{where})"
                )
            detail = _cause(exc)
            return done(
                f"no Socket.IO server with namespace {NAMESPACE} at {shown} (WebSocket transport, "
                f"path {socketio_path}): {detail}"
                + ("" if socketio_path != "/socket.io/" else "; behind a gateway, see --estuary-socketio-path")
            )
        result.steps.append("socketio /sdk")
        bound = min(timeout, 10.0)
        answer = await _first_of(received, arrived, ("session_info", "auth_error"), bound / 2)
        if answer is None:  # some servers take auth only as an event (CONN-3)
            await sio.emit("authenticate", auth, namespace=NAMESPACE)
            answer = await _first_of(received, arrived, ("session_info", "auth_error"), bound / 2)
        if answer is None:
            return done(
                f"{shown} accepted the Socket.IO connection but sent neither session_info nor auth_error "
                f"within {bound:.0f} s (auth in CONNECT, then as an authenticate event)"
            )
        if answer == "auth_error":
            payload = received["auth_error"]
            text = payload.get("error") if isinstance(payload, dict) else payload
            return done(f"the API key was refused: auth_error {text!r} (check --estuary-api-key / ESTUARY_API_KEY)")
        result.steps.append("session_info")
        await sio.emit("livekit_token", None, namespace=NAMESPACE)
        offer = await _first_of(received, arrived, ("livekit_token", "livekit_error"), LIVEKIT_PROBE)
        if offer == "livekit_token":
            result.livekit = "offered (livekit_token answered)"
            room_url = received["livekit_token"].get("url") if isinstance(received["livekit_token"], dict) else None
            if isinstance(room_url, str) and room_url.startswith("wss://"):
                # the cases that join a room say it too (BLOCKED by LK-2, or LK-2's own FAIL)
                problem = await diagnose_tls(room_url, context, what="the LiveKit server", timeout=LIVEKIT_PROBE)
                if problem:
                    result.livekit = f"offered, but {problem}"
        elif offer == "livekit_error":
            payload = received["livekit_error"]
            result.livekit = f"refused: livekit_error {payload!r}"[:200]
        else:
            result.livekit = f"no livekit_token reply within {LIVEKIT_PROBE:.0f} s"
        result.summary = (
            f"{shown} reachable, Socket.IO {NAMESPACE} answered, API key accepted; LiveKit {result.livekit}"
        )
        return done(None)
    finally:
        try:
            await asyncio.wait_for(sio.disconnect(), 3)
        except (TimeoutError, OSError, socketio.exceptions.SocketIOError):
            pass


async def _first_of(
    received: dict[str, Any], arrived: asyncio.Event, names: tuple[str, ...], timeout: float
) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        for name in names:
            if name in received:
                return name
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), remaining)
        except TimeoutError:
            pass


def _cause(exc: BaseException) -> str:
    """python-socketio says only 'Connection error'; the aiohttp error under it says why."""
    detail = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None and (cause.__cause__ or cause.__context__) is not None and str(cause) in detail:
        cause = cause.__cause__ or cause.__context__
    if cause is not None and str(cause) and str(cause) not in detail:
        detail += f" ({type(cause).__name__}: {str(cause)[:200]})"
    return detail


def run_preflight(
    url: str,
    api_key: str,
    character_id: str,
    player_id: str,
    timeout: float,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    socketio_path: str = "/socket.io/",
) -> PreflightResult:
    """:func:`preflight` from synchronous code (the plugin calls it before any case runs)."""
    return asyncio.run(
        preflight(url, api_key, character_id, player_id, timeout, ca_file=ca_file, socketio_path=socketio_path)
    )
