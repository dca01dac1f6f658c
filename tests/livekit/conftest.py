"""Shared by the LiveKit foundation tests: token minting, rooms that always disconnect, bounded waits."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import pytest
import pytest_asyncio
from livekit import api, rtc

from pytest_estuary.livekit_server import LiveKitCredentials, redact

T = TypeVar("T")
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def hide_jwts(text: str) -> str:
    """The server echoes a rejected token in its reason text; keep JWTs out of failure messages."""
    return JWT.sub(lambda match: redact(match.group(0)), text)


class Mint(Protocol):
    def __call__(
        self, room: str, identity: str | None = None, *, secret: str | None = None, ttl: float = 600.0
    ) -> str: ...


@pytest.fixture
def mint(livekit_server: LiveKitCredentials) -> Mint:
    """``mint("room", ttl=-120, secret=...)``: a real livekit-api join token for the session server."""

    def make(room: str, identity: str | None = None, *, secret: str | None = None, ttl: float = 600.0) -> str:
        return (
            api.AccessToken(livekit_server.api_key, secret or livekit_server.api_secret)
            .with_identity(identity or f"user-{secrets.token_hex(3)}")
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .with_ttl(timedelta(seconds=ttl))
            .to_jwt()
        )

    return make


async def within(awaitable: Awaitable[T], seconds: float, what: str, seen: Callable[[], Any] = lambda: "nothing") -> T:
    """Await with a bound; on timeout say what was awaited and what was seen instead."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(f"waited {seconds:.0f} s for {what}; saw instead: {seen()}") from None


@pytest.fixture
def bounded() -> Callable[..., Awaitable[Any]]:
    """``await bounded(aw, seconds, "what", seen=lambda: state)``: see :func:`within`."""
    return within


@pytest_asyncio.fixture
async def rooms() -> AsyncIterator[Callable[[], rtc.Room]]:
    """``room = rooms()``: an ``rtc.Room`` that is disconnected at teardown, whatever happened."""
    made: list[rtc.Room] = []

    def make() -> rtc.Room:
        made.append(rtc.Room())
        return made[-1]

    yield make
    for room in made:
        await room.disconnect()


@pytest.fixture
def refused(livekit_server: LiveKitCredentials, rooms: Callable[[], rtc.Room]) -> Callable[[str], Awaitable[str]]:
    """``text = await refused(token)``: connect, require the server to refuse, return its reason (JWTs hidden)."""

    async def connect(token: str) -> str:
        room = rooms()
        try:
            await within(room.connect(livekit_server.url, token), 15, "the server to answer the connect")
        except rtc.ConnectError as error:
            return hide_jwts(str(error))
        raise AssertionError(
            f"the server accepted the token: joined room {room.name!r} as {room.local_participant.identity!r}"
        )

    return connect
