"""The client against a hostile server that stalls at exactly one phase, breaks names, or garbles payloads.

Each stall ends in the documented code within the bound of the setting that owns that phase. The
bounds differ per setting (and the others are long), so the elapsed time also proves WHICH setting
bounded the phase. SLACK is what a loaded 2-core machine may add on top of a bound.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pytest_estuary.client import ErrorCode, EstuaryClient, EstuaryError, EventTimeout, SyntheticAudioInput
from pytest_estuary.client.livekit_voice import DIAGNOSE_TIMEOUT
from pytest_estuary.client.signalling import backoff
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.waiting import never_within, wait_until

from .hostile import HostileServer, Script, Stall

pytestmark = pytest.mark.asyncio
SLACK = 1.0
LONG = 30.0  # the settings that must NOT be the ones that fire
# The hostile server never deletes a room, so "the client left" is seen as the SFU dropping its
# participant: at once after the client's Leave (seen within 0.1 s here), or once livekit-server gives
# up on a closed connection if that Leave was lost on a loaded machine (one run needed > 5 s). Either
# way only a client that closed its room connection disappears: one still connected stays listed.
SFU_DROP_BOUND = 15.0
BOUNDS = {
    "connect_timeout": 0.6,
    "session_info_timeout": 0.9,
    "token_timeout": 0.7,
    "ready_timeout": 0.8,
    "voice_start_timeout": 0.75,
    "leave_timeout": 0.65,
}


def client_for(server: HostileServer, **settings: Any) -> EstuaryClient:
    options: dict[str, Any] = {name: LONG for name in BOUNDS}
    options.update(settings)
    return EstuaryClient(server.url, "est-hostile-key", "char", f"player-{uuid.uuid4().hex[:6]}", **options)


def assert_within(took: float, bound: float, what: str) -> None:
    assert bound - 0.05 <= took < bound + SLACK, f"{what}: took {took:.2f} s against a bound of {bound:.2f} s"


def assert_clean(client: EstuaryClient) -> None:
    """Nothing left behind: no socket, no voice, no input, no waiters, no tasks."""
    assert client._signalling.open_sockets == 0, "an aiohttp session (socket) was left open"
    assert client.transport is None and not client.audio_input.is_open
    assert not client._emitter._waiters and not client._tasks


async def server_lets_go(server: HostileServer, bound: float) -> None:
    await wait_until(lambda: server.open == 0, timeout=bound, awaited="the server to see every connection closed",
                     seen=lambda: f"{server.open} open of {server.opened}")


@pytest.mark.parametrize(
    ("stall", "phase"),
    [
        ("tcp", "TCP connect"),
        ("upgrade", "WebSocket upgrade"),
        ("eio_open", "Engine.IO open"),
        ("namespace", "namespace CONNECT"),
    ],
)
async def test_each_socket_phase_of_connect_is_bounded_by_connect_timeout(stall: Stall, phase: str) -> None:
    async with HostileServer(Script(stall=stall)) as server:
        client = client_for(server, connect_timeout=BOUNDS["connect_timeout"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(EventTimeout) as failure:
            await client.connect()
        took = loop.time() - started
        assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
        assert failure.value.phase == f"connect(): {phase}" and failure.value.setting == "connect_timeout"
        assert "saw instead:" in str(failure.value), failure.value
        assert_within(took, BOUNDS["connect_timeout"], phase)
        assert_clean(client)
        if stall != "tcp":  # (a connection the kernel never accepted has no server side to close)
            await server_lets_go(server, BOUNDS["leave_timeout"] + SLACK)
        await client.disconnect()


async def test_session_info_phase_is_bounded_by_session_info_timeout() -> None:
    async with HostileServer(Script(stall="session_info")) as server:
        client = client_for(server, session_info_timeout=BOUNDS["session_info_timeout"], leave_timeout=1.0)
        with pytest.raises(EventTimeout) as failure:
            await client.connect()
        asked = server.got("authenticate")
        assert asked is not None
        took = asyncio.get_running_loop().time() - asked.t
        assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT and failure.value.phase == "connect(): session_info"
        assert "namespace /sdk connected" in str(failure.value), failure.value
        assert_within(took, BOUNDS["session_info_timeout"], "session_info")
        assert_clean(client)
        await server_lets_go(server, 1.0 + SLACK)


@pytest.mark.parametrize(
    ("stall", "transport", "request_name", "setting", "phase"),
    [
        ("token", "livekit", "livekit_token", "token_timeout", "start_voice(): livekit_token reply"),
        ("voice_started", "websocket", "start_voice", "voice_start_timeout", "start_voice(): voice_started"),
    ],
)
async def test_voice_start_replies_are_bounded(
    stall: Stall, transport: str, request_name: str, setting: str, phase: str
) -> None:
    async with HostileServer(Script(stall=stall)) as server:
        client = client_for(server, voice_transport=transport, connect_timeout=5.0, leave_timeout=1.0,
                            **{setting: BOUNDS[setting]})
        await client.connect()
        with pytest.raises(EventTimeout) as failure:
            await client.start_voice()
        asked = server.got(request_name)
        assert asked is not None
        took = asyncio.get_running_loop().time() - asked.t
        assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
        assert failure.value.phase == phase and failure.value.setting == setting
        assert_within(took, BOUNDS[setting], phase)
        assert client.transport is None and not client.audio_input.is_open and not client._emitter._waiters
        await client.disconnect()
        assert_clean(client)


async def test_room_connect_phase_is_bounded_by_connect_timeout() -> None:
    """ERR-3: the token's URL accepts TCP and never answers: CONNECTION_FAILED within connect_timeout
    (+ the bounded diagnosis request)."""
    black_hole = HostileServer(Script(stall="upgrade"))
    async with black_hole, HostileServer() as server:
        url = black_hole.url.replace("http", "ws", 1)
        server.script.token = lambda: {"token": "eyJhbGciOiJIUzI1NiJ9.e30.x", "url": url, "room": "room-1"}
        client = client_for(server, voice_transport="livekit", connect_timeout=BOUNDS["connect_timeout"],
                            leave_timeout=1.0)
        await client.connect()
        with pytest.raises(EstuaryError) as failure:
            await client.start_voice()
        asked = server.got("livekit_token")
        assert asked is not None
        took = asyncio.get_running_loop().time() - asked.t
        assert failure.value.code is ErrorCode.CONNECTION_FAILED and "room connect" in str(failure.value)
        assert "eyJhbGciOiJIUzI1NiJ9.e30" not in str(failure.value), "the token leaked into the message"
        assert BOUNDS["connect_timeout"] - 0.05 <= took < BOUNDS["connect_timeout"] + DIAGNOSE_TIMEOUT + SLACK, took
        await client.disconnect()
        assert_clean(client)


def real_token(creds: LiveKitCredentials, room: str, identity: str) -> Callable[[], dict[str, Any]]:
    from livekit import api

    def make() -> dict[str, Any]:
        grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
        jwt = api.AccessToken(creds.api_key, creds.api_secret).with_identity(identity).with_grants(grants).to_jwt()
        return {"token": jwt, "url": creds.url, "room": room}

    return make


async def participants(creds: LiveKitCredentials, room: str) -> list[str]:
    from livekit import api

    async with api.LiveKitAPI(creds.url.replace("ws", "http", 1), creds.api_key, creds.api_secret) as lk:
        try:
            reply = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        except api.TwirpError:
            return []  # no such room (any more)
    return [p.identity for p in reply.participants]


async def test_ready_phase_is_bounded_by_ready_timeout_and_the_room_is_left(livekit_server: LiveKitCredentials) -> None:
    """ERR-8: a real room is joined, livekit_ready never comes: CONNECTION_TIMEOUT within ready_timeout,
    and the client leaves the room (ERR-7)."""
    room, identity = f"hostile-{uuid.uuid4().hex[:6]}", f"player-{uuid.uuid4().hex[:6]}"
    async with HostileServer(Script(stall="ready", token=real_token(livekit_server, room, identity))) as server:
        client = client_for(server, voice_transport="livekit", connect_timeout=5.0, leave_timeout=2.0,
                            ready_timeout=BOUNDS["ready_timeout"])
        await client.connect()
        with pytest.raises(EventTimeout) as failure:
            await client.start_voice()
        asked = server.got("livekit_join")
        assert asked is not None
        took = asyncio.get_running_loop().time() - asked.t
        assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
        assert failure.value.phase == "start_voice(): livekit_ready" and failure.value.setting == "ready_timeout"
        assert_within(took, BOUNDS["ready_timeout"], "livekit_ready")
        await wait_until(lambda: server.got("livekit_leave"), timeout=SLACK, awaited="livekit_leave (drop the room)",
                         seen=server.names)
        await wait_until(lambda: _absent(livekit_server, room, identity), timeout=SFU_DROP_BOUND,
                         awaited=f"{identity} to have left room {room}")
        await client.disconnect()
        assert_clean(client)


async def test_leave_needs_no_server_reply_and_is_bounded_by_leave_timeout(
    livekit_server: LiveKitCredentials,
) -> None:
    """LIFE-2 against a server that ignores livekit_leave: stop_voice() leaves the real room on its own,
    within leave_timeout, and the room connection really ends."""
    room, identity = f"leave-{uuid.uuid4().hex[:6]}", f"player-{uuid.uuid4().hex[:6]}"
    async with HostileServer(Script(token=real_token(livekit_server, room, identity))) as server:
        client = client_for(server, voice_transport="livekit", connect_timeout=5.0, ready_timeout=5.0,
                            leave_timeout=BOUNDS["leave_timeout"])
        await client.connect()
        assert await client.start_voice() == "livekit"
        assert identity in await participants(livekit_server, room)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.stop_voice()
        took = loop.time() - started
        assert took < BOUNDS["leave_timeout"] + SLACK, f"stop_voice() took {took:.2f} s"
        assert server.got("livekit_leave") is not None
        assert not [e for e in client.history if e.event == "teardown_failed"], client.history
        assert [e.event for e in client.history].count("livekit_disconnected") == 1
        await wait_until(lambda: _absent(livekit_server, room, identity), timeout=SFU_DROP_BOUND,
                         awaited=f"{identity} gone from room {room}")
        await client.disconnect()
        assert_clean(client)


async def _absent(creds: LiveKitCredentials, room: str, identity: str) -> bool:
    return identity not in await participants(creds, room)


async def test_voice_stopped_phase_is_bounded_by_leave_timeout() -> None:
    async with HostileServer(Script(stall="voice_stopped")) as server:
        client = client_for(server, voice_transport="websocket", leave_timeout=BOUNDS["leave_timeout"])
        await client.connect()
        await client.start_voice()
        with pytest.raises(EventTimeout) as failure:
            await client.stop_voice()
        asked = server.got("stop_voice")
        assert asked is not None
        took = asyncio.get_running_loop().time() - asked.t
        assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
        assert failure.value.phase == "stop_voice(): voice_stopped" and failure.value.setting == "leave_timeout"
        assert_within(took, BOUNDS["leave_timeout"], "voice_stopped")
        assert client.transport is None and not client.audio_input.is_open  # local side closed all the same
        await client.disconnect()
        assert_clean(client)


async def test_socket_close_phase_is_bounded_by_leave_timeout_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    async with HostileServer(Script(stall="close")) as server:
        client = client_for(server, leave_timeout=BOUNDS["leave_timeout"])
        await client.connect()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with caplog.at_level(logging.WARNING, "pytest_estuary.client"):
            await client.disconnect()
        took = loop.time() - started
        assert_within(took, BOUNDS["leave_timeout"], "socket close")
        failures = [e.payload for e in client.history if e.event == "teardown_failed"]
        assert [f.step for f in failures] == ["closing the socket"] and "leave_timeout" in failures[0].reason
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [f"teardown: closing the socket failed: {failures[0].reason}"]
        assert_clean(client)
        await server_lets_go(server, SLACK)  # the TCP connection really went


async def test_disconnect_reports_a_failed_voice_stop_once(caplog: pytest.LogCaptureFixture) -> None:
    async with HostileServer(Script(stall="voice_stopped")) as server:
        client = client_for(server, voice_transport="websocket", leave_timeout=BOUNDS["leave_timeout"])
        await client.connect()
        await client.start_voice()
        with caplog.at_level(logging.WARNING, "pytest_estuary.client"):
            await client.disconnect()
        failures = [e.payload for e in client.history if e.event == "teardown_failed"]
        assert [f.step for f in failures] == ["stopping voice"] and "voice_stopped" in failures[0].reason
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "stopping voice" in warnings[0] and "CONNECTION_TIMEOUT" not in warnings[0]
        assert_clean(client)
        await server_lets_go(server, SLACK)


class StuckInput(SyntheticAudioInput):
    """An audio input whose close never returns (a wedged sound device)."""

    async def _close(self) -> None:
        await asyncio.Event().wait()


async def test_an_input_that_never_closes_is_bounded_by_leave_timeout() -> None:
    async with HostileServer() as server:
        source = StuckInput()
        client = client_for(server, voice_transport="websocket", audio_input=source,
                            leave_timeout=BOUNDS["leave_timeout"])
        await client.connect()
        await client.start_voice()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.stop_voice()
        assert_within(loop.time() - started, BOUNDS["leave_timeout"], "closing the audio input")
        failures = [e.payload for e in client.history if e.event == "teardown_failed"]
        assert [f.step for f in failures] == ["closing the audio input"] and "StuckInput" in failures[0].reason
        assert not source.is_open
        await client.disconnect()
        assert_clean(client)


RESERVED = ["disconnect", "connect", "connect_error", "__disconnect_final", "disconnected", "connected",
            "livekit_disconnected", "reconnecting", "teardown_failed"]


async def test_reserved_event_names_change_nothing_and_leak_no_socket() -> None:
    async with HostileServer() as server:
        client = client_for(server, voice_transport="websocket", reconnect=True, leave_timeout=1.0)
        info = await client.connect()
        await client.start_voice()
        for name in RESERVED:
            await server.push(name, {"reason": "hostile"})
        await wait_until(
            lambda: sum(e.event == "protocol_error" for e in client.history) >= len(RESERVED), timeout=2.0,
            awaited="one protocol_error per reserved name", seen=lambda: [e.event for e in client.history],
        )
        refused = [e.payload.event for e in client.history if e.event == "protocol_error"]
        assert refused == RESERVED
        # A reconnect would start backoff(1) after a (believed) disconnect; watch two backoff steps.
        await never_within(
            lambda: server.opened > 1 or client._signalling.open_sockets != 1 or not client.is_connected,
            window=backoff(1) + backoff(2), what="a second socket or a lost session",
            seen=lambda: (server.opened, client._signalling.open_sockets, client.is_connected),
        )
        mine = [e.event for e in client.history]
        assert "disconnected" not in mine and mine.count("connected") == 1 and "teardown_failed" not in mine
        assert client.session_info == info and client.transport == "websocket"
        await client.send_text("still here?")
        reply = await client.wait_for("bot_response", timeout=2.0)
        assert reply.text == "echo"
        await client.disconnect()
        assert_clean(client)
        await server_lets_go(server, SLACK)
        assert server.opened == 1


@pytest.mark.parametrize("payload", [{"error": 5}, ["nope"], "no", {"error": {"nested": True}}],
                         ids=["number", "list", "string", "object"])
async def test_malformed_auth_error_is_auth_failed_at_once(payload: object) -> None:
    async with HostileServer(Script(auth_reply=("auth_error", payload))) as server:
        client = client_for(server, session_info_timeout=5.0, leave_timeout=1.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(EstuaryError) as failure:
            await client.connect()
        took = loop.time() - started
        assert failure.value.code is ErrorCode.AUTH_FAILED and "malformed auth_error" in str(failure.value)
        assert took < SLACK, f"AUTH_FAILED came after {took:.2f} s: it waited for a timeout"
        assert_clean(client)
        await server_lets_go(server, 1.0 + SLACK)
