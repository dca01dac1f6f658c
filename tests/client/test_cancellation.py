"""Cancelling connect(), start_voice() or disconnect() midway: CancelledError propagates, nothing leaks.

Also: teardown failures are reported once, with JWTs redacted, and the client source never swallows
cancellation wholesale.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from pytest_estuary.client import EstuaryClient
from pytest_estuary.client.rtc_connect import pending_reaps
from pytest_estuary.client.teardown import TeardownFailure, cancel_and_wait, report_failure
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.waiting import wait_until

from .hostile import HostileServer, Script
from .test_hostile_server import SFU_DROP_BOUND, SLACK, assert_clean, participants, real_token, server_lets_go

LEAVE = 1.0  # leave_timeout of these clients: the bound of every cleanup step after a cancellation


def client_for(server: HostileServer, **settings: Any) -> EstuaryClient:
    return EstuaryClient(server.url, "est-hostile-key", "char", f"player-{uuid.uuid4().hex[:6]}",
                         leave_timeout=LEAVE, **settings)


async def cancel_when(call: Awaitable[object], server: HostileServer, request: str) -> float:
    """Run ``call``, cancel it once the server got ``request``; returns seconds from cancel to its end."""
    task = asyncio.ensure_future(call)
    await wait_until(lambda: server.got(request) is not None or task.done(), timeout=10.0,
                     awaited=f"the server to receive {request}", seen=server.names)
    assert not task.done(), f"the call ended before it could be cancelled: {task}"
    loop = asyncio.get_running_loop()
    started = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return loop.time() - started


@pytest.mark.asyncio
async def test_cancel_connect_while_waiting_for_session_info() -> None:
    async with HostileServer(Script(stall="session_info")) as server:
        client = client_for(server)
        took = await cancel_when(client.connect(), server, "authenticate")
        assert took < LEAVE + SLACK  # the close after a cancel is bounded by leave_timeout
        assert not client.is_connected
        assert_clean(client)
        await server_lets_go(server, SLACK)


@pytest.mark.asyncio
async def test_cancel_start_voice_while_waiting_for_the_token() -> None:
    async with HostileServer(Script(stall="token")) as server:
        client = client_for(server, voice_transport="livekit")
        await client.connect()
        took = await cancel_when(client.start_voice(), server, "livekit_token")
        assert took < LEAVE + SLACK
        assert client.transport is None and not client.audio_input.is_open and not client._emitter._waiters
        # the server may hold voice state for us: it must be told to drop it
        await wait_until(lambda: server.got("livekit_leave"), timeout=SLACK, awaited="livekit_leave", seen=server.names)
        assert client.is_connected  # only voice was given up
        await client.send_text("still here?")
        await client.wait_for("bot_response", timeout=2.0)
        await client.disconnect()
        assert_clean(client)
        await server_lets_go(server, SLACK)


@pytest.mark.asyncio
async def test_cancel_start_voice_in_a_joined_room_leaves_it(livekit_server: LiveKitCredentials) -> None:
    room, identity = f"cancel-{uuid.uuid4().hex[:6]}", f"player-{uuid.uuid4().hex[:6]}"
    async with HostileServer(Script(stall="ready", token=real_token(livekit_server, room, identity))) as server:
        client = client_for(server, voice_transport="livekit")
        await client.connect()
        took = await cancel_when(client.start_voice(), server, "livekit_join")
        assert took < 2 * LEAVE + SLACK  # leave the room, close the source: each bounded by leave_timeout
        assert client.transport is None and not client.audio_input.is_open and not client._emitter._waiters
        assert pending_reaps() == 0
        await wait_until(lambda: _absent(livekit_server, room, identity), timeout=SFU_DROP_BOUND,
                         awaited=f"{identity} gone from room {room}")
        await client.disconnect()
        assert_clean(client)


async def _absent(creds: LiveKitCredentials, room: str, identity: str) -> bool:
    return identity not in await participants(creds, room)


@pytest.mark.asyncio
async def test_cancel_disconnect_while_voice_stops_still_closes_everything() -> None:
    async with HostileServer(Script(stall="voice_stopped")) as server:
        client = client_for(server, voice_transport="websocket")
        await client.connect()
        await client.start_voice()
        took = await cancel_when(client.disconnect(), server, "stop_voice")
        assert took < LEAVE + SLACK  # closing the socket after the cancel: one leave_timeout at most
        assert_clean(client)
        assert not client.is_connected
        await server_lets_go(server, SLACK)


@pytest.mark.asyncio
async def test_cancel_and_wait_reraises_the_callers_own_cancellation() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await release.wait()  # a slow cleanup
            raise

    inner = asyncio.ensure_future(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.ensure_future(cancel_and_wait(inner, timeout=5.0))
    await wait_until(lambda: inner.cancelling() > 0, timeout=1.0, awaited="the inner task to be cancelled")
    outer.cancel()  # the caller of cancel_and_wait is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await outer
    release.set()
    assert await cancel_and_wait(inner, timeout=1.0) is None and inner.cancelled()


def test_teardown_failure_is_logged_once_with_jwts_redacted(caplog: pytest.LogCaptureFixture) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwIn0.c2lnbmF0dXJl"
    recorded: list[tuple[str, object]] = []
    with caplog.at_level(logging.WARNING, "pytest_estuary.client"):
        failure = report_failure(lambda name, payload: recorded.append((name, payload)), "sending livekit_leave",
                                 f"server said: bad token {jwt}")
    assert recorded == [("teardown_failed", failure)] and isinstance(failure, TeardownFailure)
    assert jwt not in failure.reason and "eyJh…" in failure.reason
    assert [r.getMessage() for r in caplog.records] == [f"teardown: sending livekit_leave failed: {failure.reason}"]
    assert "eyJhbGciOiJIUzI1NiJ9." not in caplog.text


def test_client_source_never_swallows_cancellation() -> None:
    """No ``suppress(BaseException)``, and every ``except BaseException`` block re-raises."""
    import pytest_estuary.client as package

    for path in Path(package.__file__).parent.glob("*.py"):
        lines = path.read_text().splitlines()
        assert not any("suppress(BaseException)" in line for line in lines), path
        for number, line in enumerate(lines):
            if "except BaseException" not in line:
                continue
            indent = len(line) - len(line.lstrip())
            block = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            assert "raise" in block, f"{path.name}:{number + 1}: except BaseException without a bare raise"
