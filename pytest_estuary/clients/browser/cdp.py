"""A minimal Chrome DevTools Protocol client over aiohttp: commands with replies, events to
handlers, flattened sessions (one per page). Just what the shim needs — no node driver to start
per client (Playwright's took 1-4 s of a 2-core machine per shim)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import Callable
from typing import Any

import aiohttp

__all__ = ["CdpConnection", "CdpError"]

Handler = Callable[[dict[str, Any]], None]
COMMAND_TIMEOUT = 30.0
MESSAGE_LIMIT = 256 * 1024 * 1024  # a say() of a long utterance is megabytes of base64


class CdpError(RuntimeError):
    """A command failed, or the browser closed the connection."""


class CdpConnection:
    """The browser-level DevTools WebSocket. ``send`` returns a command's result; ``on`` registers a
    handler for an event of one session (None: the browser's own); ``on_close`` is told once."""

    def __init__(self, http: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._http, self._socket = http, socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[tuple[str | None, str], Handler] = {}
        self.on_close: Callable[[], None] = lambda: None
        self.closed = False
        self._reader = asyncio.create_task(self._read(), name="cdp reader")

    @classmethod
    async def connect(cls, endpoint: str) -> CdpConnection:
        http = aiohttp.ClientSession()
        try:
            socket = await http.ws_connect(endpoint, max_msg_size=MESSAGE_LIMIT, autoping=False)
        except BaseException:
            await http.close()
            raise
        return cls(http, socket)

    def on(self, session: str | None, event: str, handler: Handler) -> None:
        self._handlers[(session, event)] = handler

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        if self.closed:
            raise CdpError(f"{method}: the DevTools connection is closed")
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            await self._socket.send_str(json.dumps(message))
            reply = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        except TimeoutError:
            raise CdpError(f"{method}: no reply from the browser within {COMMAND_TIMEOUT:g} s") from None
        finally:
            self._waiting.pop(ident, None)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}".rstrip())
        return reply.get("result", {})

    async def _read(self) -> None:
        try:
            async for frame in self._socket:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                if "id" in message:
                    future = self._waiting.get(message["id"])
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                handler = self._handlers.get((message.get("sessionId"), message.get("method", "")))
                if handler is not None:
                    try:
                        handler(message.get("params", {}))
                    except Exception as exc:  # one bad event must not end the connection
                        print(f"estuary-browser-shim: handling {message.get('method')}: {exc!r}", file=sys.stderr)
        finally:
            self.closed = True
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(CdpError("the browser closed the DevTools connection"))
            self.on_close()

    async def close(self) -> None:
        self.on_close = lambda: None
        with contextlib.suppress(Exception):
            await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._http.close()
