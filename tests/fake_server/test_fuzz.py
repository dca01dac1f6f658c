"""Fuzzing: arbitrary payloads to every client event never crash the fake server nor disturb
another session that is talking at the same time (WIRE-3)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_server import FakeEstuaryServer

CLIENT_EVENTS = [
    "authenticate", "text", "say_line", "client_interrupt", "livekit_token", "livekit_join",
    "livekit_leave", "start_voice", "stream_audio", "stop_voice", "no_such_event",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Payloads that look like the real ones, with wrong types inside, reach deeper than random JSON.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values,
        "textOnly": json_values,
        "audio": st.text(max_size=40) | json_values,
        "room": json_values,
        "turn_mode": json_values,
        "message_id": json_values,
        "api_key": json_values,
        "player_id": json_values,
        "character_id": json_values,
    },
)
payloads = st.lists(st.tuples(st.sampled_from(CLIENT_EVENTS), st.one_of(json_values, shaped)), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEstuaryServer]:
    with FakeEstuaryServer() as fake:  # no LiveKit: the fuzz is about the wire, and stays fast
        yield fake


async def connect(server: FakeEstuaryServer, player_id: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    auth = {"api_key": server.api_key, "character_id": "fuzz", "player_id": player_id}
    await client.connect(server.url, namespaces=["/sdk"], transports=["websocket"], auth=auth)
    return client


async def still_answers(client: socketio.AsyncClient) -> bool:
    answered = asyncio.Event()
    client.on("bot_response", lambda *_: answered.set(), namespace="/sdk")
    await client.emit("text", {"text": "are you still fine?"}, namespace="/sdk")
    try:
        await asyncio.wait_for(answered.wait(), 5)
    except TimeoutError:
        return False
    return True


async def fuzz_once(server: FakeEstuaryServer, events: list[tuple[str, Any]]) -> None:
    bystander = await connect(server, "bystander")
    fuzzer = await connect(server, "fuzzer")
    try:
        for name, payload in events:
            await fuzzer.emit(name, payload, namespace="/sdk")
        assert await still_answers(bystander), f"a concurrent session stopped answering after {events!r}"
        if fuzzer.connected:  # only drop_socket-like misuse may close it; none is configured
            assert await still_answers(fuzzer), f"the fuzzed session stopped answering after {events!r}"
    finally:
        await fuzzer.disconnect()
        await bystander.disconnect()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=payloads)
def test_arbitrary_payloads_never_break_the_server(server: FakeEstuaryServer, events: list[tuple[str, Any]]) -> None:
    asyncio.run(fuzz_once(server, events))
    assert server.engine.sessions is not None  # the server's loop is alive
