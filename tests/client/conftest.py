"""One fake Estuary server (over the session's real livekit-server) for the client tests, reset per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.client import EstuaryClient
from pytest_estuary.livekit_server import LiveKitCredentials


@pytest.fixture(scope="session")
def fake_engine(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    server = FakeEstuaryServer(
        livekit=LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tolerated() -> list[str]:
    """``actual`` texts of fake-server violations a test expects (a race it documents)."""
    return []


@pytest.fixture
def fake(fake_engine: FakeEstuaryServer, tolerated: list[str]) -> Iterator[FakeEstuaryServer]:
    """The fake server, reset for this test; client protocol violations it saw fail the test."""
    fake_engine.reset()
    yield fake_engine
    violations = [v for v in fake_engine.events.violations if v.actual not in tolerated]
    assert not violations, f"the fake server saw client protocol violations: {violations}"


MakeClient = Callable[..., EstuaryClient]


@pytest_asyncio.fixture
async def make_client(fake: FakeEstuaryServer) -> AsyncIterator[MakeClient]:
    """``make_client(**overrides)``: a client for the fake server with its own player id; all are
    disconnected at teardown."""
    made: list[EstuaryClient] = []

    def make(**overrides: Any) -> EstuaryClient:
        options: dict[str, Any] = {
            "server_url": fake.url,
            "api_key": fake.api_key,
            "character_id": "char-1",
            "player_id": f"player-{uuid.uuid4().hex[:8]}",
        }
        options.update(overrides)
        client = EstuaryClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.disconnect()


def in_log(fake: FakeEstuaryServer, name: str, direction: str, session_id: str | None) -> list[Any]:
    """Payloads of the fake server's recorded events of this session."""
    return [e.payload for e in fake.events.find(name=name, direction=direction, session_id=session_id)]
