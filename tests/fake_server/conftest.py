"""The fake server's own tests: ``make_peer(url)``, a bare Socket.IO peer that records every event and
waits boundedly (no client library of ours in between)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
import socketio

NAMESPACE = "/sdk"


class Peer:
    """One python-socketio client in ``/sdk``; ``events`` holds (monotonic time, name, args)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str, tuple[Any, ...]]] = []
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_any, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def _on_any(self, name: str, *args: Any) -> None:
        self.events.append((time.monotonic(), name, args))
        self._changed.set()

    async def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected.set()
        self._changed.set()

    async def connect(self, auth: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        await self.sio.connect(
            self.url, namespaces=[NAMESPACE], transports=["websocket"], auth=auth, headers=headers or {}
        )

    async def session(self, api_key: str, player_id: str = "player", **extra: Any) -> dict[str, Any]:
        await self.connect({"api_key": api_key, "character_id": "c", "player_id": player_id, **extra})
        return await self.wait("session_info")

    async def emit(self, name: str, *args: Any) -> None:
        await self.sio.emit(name, args if len(args) != 1 else args[0], namespace=NAMESPACE)

    def payloads(self, name: str, since: float = 0.0) -> list[Any]:
        return [args[0] if args else None for t, n, args in self.events if n == name and t >= since]

    async def wait(
        self, name: str, *, timeout: float = 5.0, predicate: Callable[[Any], bool] | None = None, since: float = 0.0
    ) -> Any:
        """The payload of the first ``name`` event at or after ``since`` (matching ``predicate``)."""
        deadline = time.monotonic() + timeout
        while True:
            for payload in self.payloads(name, since):
                if predicate is None or predicate(payload):
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(n, str(a)[:80]) for _, n, a in self.events[-8:]]
                raise AssertionError(f"no {name!r} within {timeout:.1f} s; last events: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def text_round_trip(self, text: str = "still there?", timeout: float = 5.0) -> float:
        """Seconds from ``text`` to the final bot_response."""
        start = time.monotonic()
        await self.emit("text", {"text": text, "textOnly": True})
        await self.wait("bot_response", predicate=lambda p: p.get("is_final") is True, since=start, timeout=timeout)
        return time.monotonic() - start

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        http = getattr(self.sio.eio, "http", None)  # left open by a connect the server refused
        if http is not None and not http.closed:
            await http.close()


MakePeer = Callable[[str], Peer]


@pytest_asyncio.fixture
async def make_peer() -> AsyncIterator[MakePeer]:
    """``make_peer(url)``: a new unconnected peer, closed at teardown."""
    made: list[Peer] = []

    def make(url: str) -> Peer:
        made.append(Peer(url))
        return made[-1]

    yield make
    for peer in made:
        await peer.close()
