"""A hostile Estuary server for the client's own tests: real sockets on 127.0.0.1, port 0.

It speaks just enough Engine.IO 4 / Socket.IO 5 over WebSocket (raw aiohttp, no python-socketio, so
it can break the protocol anywhere) and stalls at exactly one phase when told to:

    tcp           the listening socket never accepts (its accept queue is full)
    upgrade       TCP is accepted, the HTTP WebSocket upgrade is never answered
    eio_open      the WebSocket opens, the Engine.IO OPEN packet never comes
    namespace     the namespace CONNECT is never acknowledged
    session_info  authenticate is never answered
    token         livekit_token is never answered
    ready         livekit_join is never answered
    voice_started start_voice is never answered
    voice_stopped stop_voice is never answered
    close         after session_info it stops reading: the client's WebSocket close is never answered

Anything else is answered promptly. ``push(name, payload)`` sends any event (reserved names too).
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

__all__ = ["HostileServer", "Script", "Stall"]

Stall = Literal[
    "tcp", "upgrade", "eio_open", "namespace", "session_info", "token", "ready", "voice_started",
    "voice_stopped", "close",
]  # fmt: skip
NS = "/sdk"
OPEN = {"upgrades": [], "pingInterval": 60_000, "pingTimeout": 60_000, "maxPayload": 1_000_000}
IDLE = 0.02  # how often a stalled handler looks whether its peer is gone


@dataclass
class Script:
    """What the server does: where it stalls, what it answers to authenticate, the livekit_token reply."""

    stall: Stall | None = None
    auth_reply: tuple[str, Any] | None = None  # e.g. ("auth_error", {"error": 5}) instead of session_info
    token: Callable[[], dict[str, Any]] = field(
        default=lambda: {"token": "eyJhbGciOiJIUzI1NiJ9.e30.x", "url": "ws://127.0.0.1:9", "room": "room-1"}
    )


@dataclass
class Received:
    t: float  # loop time
    name: str
    payload: Any


class HostileServer:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.received: list[Received] = []
        self.opened = 0  # WebSocket (or TCP, for "upgrade") connections accepted so far
        self.open = 0  # ... and still open
        self.url = ""
        self._peers: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._raw: asyncio.Server | None = None
        self._sockets: list[socket.socket] = []
        self._stopping = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> HostileServer:
        stall = self.script.stall
        if stall == "tcp":
            self.url = self._full_backlog()
        elif stall == "upgrade":
            self._raw = await asyncio.start_server(self._silent, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{self._raw.sockets[0].getsockname()[1]}"
        else:
            app = web.Application()
            app.router.add_get("/socket.io/", self._websocket)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stopping.set()
        for peer in list(self._peers):
            await peer.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._raw is not None:
            self._raw.close()
            await self._raw.wait_closed()
        for sock in self._sockets:
            sock.close()

    def _full_backlog(self) -> str:
        """A listener with a one-place accept queue, filled by two connections of our own: the
        kernel drops every further SYN, so a client's TCP connect hangs (it retries its SYN)."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        self._sockets.append(listener)
        address = listener.getsockname()
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(address)
            except BlockingIOError:
                pass
            self._sockets.append(filler)
        return f"http://127.0.0.1:{address[1]}"

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self.open += 1
        try:
            while await reader.read(4096):  # read the upgrade request, answer nothing, until the peer goes
                pass
        finally:
            self.open -= 1
            writer.close()

    # -- queries ------------------------------------------------------------------------------

    def got(self, name: str) -> Received | None:
        """The first event of that name the client sent."""
        return next((r for r in self.received if r.name == name), None)

    def names(self) -> list[str]:
        return [r.name for r in self.received]

    async def push(self, name: str, payload: Any = None) -> None:
        """Send an event to the newest connection."""
        await self._emit(self._peers[-1], name, payload)

    # -- the protocol -------------------------------------------------------------------------

    @staticmethod
    async def _emit(ws: web.WebSocketResponse, name: str, payload: Any) -> None:
        await ws.send_str(f"42{NS}," + json.dumps([name, payload]))

    def _record(self, name: str, payload: Any) -> None:
        self.received.append(Received(asyncio.get_running_loop().time(), name, payload))

    async def _hold(self, request: web.Request) -> None:
        """Stall: do nothing until the peer's TCP connection is gone (or the server stops)."""
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(IDLE)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.opened += 1
        self.open += 1
        self._peers.append(ws)
        try:
            if self.script.stall == "eio_open":
                await self._hold(request)
            else:
                await ws.send_str("0" + json.dumps({"sid": uuid.uuid4().hex, **OPEN}))
                await self._serve(request, ws)
        finally:
            self.open -= 1
            self._peers.remove(ws)
        return ws

    async def _serve(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            text: str = message.data
            if text.startswith(f"40{NS}"):
                self._record("connect", json.loads(text[len(NS) + 3 :]) if len(text) > len(NS) + 3 else None)
                if self.script.stall != "namespace":
                    await ws.send_str(f"40{NS}," + json.dumps({"sid": uuid.uuid4().hex}))
            elif text.startswith(f"41{NS}"):
                self._record("disconnect", None)
            elif text.startswith(f"42{NS},"):
                name, *args = json.loads(text[len(NS) + 3 :])
                await self._on_event(ws, name, args[0] if args else None)
                if name == "authenticate" and self.script.stall == "close":
                    await self._hold(request)  # never read again: the close frame goes unanswered
                    return
            elif text == "1":  # Engine.IO CLOSE
                return

    async def _on_event(self, ws: web.WebSocketResponse, name: str, payload: Any) -> None:
        self._record(name, payload)
        stall, reply = self.script.stall, None
        if name == "authenticate" and stall != "session_info":
            reply = self.script.auth_reply or ("session_info", {
                "session_id": "s-1", "conversation_id": "c-1", "character_id": payload["character_id"],
                "player_id": payload["player_id"],
            })  # fmt: skip
        elif name == "livekit_token" and stall != "token":
            reply = ("livekit_token", self.script.token())
        elif name == "livekit_join" and stall != "ready":
            reply = ("livekit_ready", {"room": (payload or {}).get("room")})
        elif name == "start_voice" and stall != "voice_started":
            reply = ("voice_started", {})
        elif name == "stop_voice" and stall != "voice_stopped":
            reply = ("voice_stopped", {})
        elif name == "text":
            reply = ("bot_response", {"text": "echo", "is_final": True, "message_id": "m-1", "chunk_index": 0})
        if reply is not None:
            await self._emit(ws, *reply)
