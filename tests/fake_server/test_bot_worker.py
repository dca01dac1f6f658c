"""The bot worker process: its line protocol, its exit, and the server outliving a worker that died."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from conformance.handshake import livekit_handshake
from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget

BOUND = 10.0


def workers_of(parent: int) -> list[int]:
    """PIDs of bot worker processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent and b"fake_server.bot_worker" in cmdline:
            found.append(int(entry.name))
    return found


def run_worker(lines: list[str], timeout: float = BOUND) -> tuple[int, list[dict[str, object]], str]:
    """Feed ``lines`` to a bare worker, close its stdin; its exit code, replies and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "fake_server.bot_worker"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_worker_replies_to_each_request_by_id_and_exits_at_end_of_input() -> None:
    code, replies, _ = run_worker(
        [
            json.dumps({"id": 1, "op": "dance"}),
            json.dumps({"id": 2, "op": "speak", "bot": "nobody", "text": "hi"}),
            json.dumps({"id": 3, "op": "leave", "bot": "nobody"}),
            "not json",
        ]
    )
    assert code == 0
    by_id = {reply["id"]: reply for reply in replies}
    assert by_id[1] == {"id": 1, "error": "ValueError: unknown op 'dance'"}
    assert by_id[2] == {"id": 2, "error": "LookupError: no bot 'nobody' (it left, or never joined)"}
    assert by_id[3] == {"id": 3, "ok": True}  # leaving twice, or a bot that failed to join, is fine
    assert len(replies) == 3


def test_a_join_the_livekit_server_refuses_is_an_error_without_the_token(livekit_server: LiveKitCredentials) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl"
    request = {"id": 1, "op": "join", "bot": "b", "url": livekit_server.url, "token": token,
               "identity": "bot-x", "listen_to": "p", "deaf": True, "pitch": 220.0}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "fake_server.bot_worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(json.dumps(request) + "\n")
    worker.stdin.flush()
    with selectors.DefaultSelector() as selector:  # the bot's own connect bound is 10 s
        selector.register(worker.stdout, selectors.EVENT_READ)
        assert selector.select(BOUND + 5), "no reply to a join the server refuses"
    reply = json.loads(worker.stdout.readline())
    _, stderr = worker.communicate(timeout=BOUND)
    assert worker.returncode == 0
    assert reply["id"] == 1 and "error" in reply, reply
    assert token not in reply["error"] and token not in stderr


@pytest_asyncio.fixture
async def fake(livekit_server: LiveKitCredentials) -> AsyncIterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    server = await asyncio.to_thread(FakeEstuaryServer(livekit=config).start)
    yield server
    await asyncio.to_thread(server.stop)


async def handshake(fake: FakeEstuaryServer) -> tuple[RawPeer, RtcPeer]:
    peer, room = RawPeer(EstuaryTarget(fake.url, fake.api_key, "c", "worker", "fake", timeout=BOUND)), RtcPeer()
    await peer.session()
    await livekit_handshake(peer, room, timeout=BOUND)
    await room.wait_for_bot_track(timeout=BOUND)
    return peer, room


@pytest.mark.asyncio
async def test_one_worker_and_its_spare_per_server_and_none_left_after_stop(
    livekit_server: LiveKitCredentials,
) -> None:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    before = set(workers_of(os.getpid()))
    server = await asyncio.to_thread(FakeEstuaryServer(livekit=config).start)
    try:
        peer, room = await handshake(server)
        bots = server.engine.bots
        deadline = asyncio.get_running_loop().time() + BOUND
        while bots.spare_pid is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert set(workers_of(os.getpid())) - before == {bots.pid, bots.spare_pid}
    finally:
        await asyncio.to_thread(server.stop)  # with a bot still in the room
    assert set(workers_of(os.getpid())) == before
    await room.wait_disconnected(timeout=BOUND)  # the bot left and the room was deleted
    await room.close()
    await peer.close()


@pytest.mark.asyncio
async def test_a_killed_worker_is_replaced_for_the_next_voice_session(fake: FakeEstuaryServer) -> None:
    peer, room = await handshake(fake)
    worker = fake.engine.bots.pid
    assert worker is not None and worker in workers_of(os.getpid())
    os.kill(worker, signal.SIGKILL)
    await peer.emit("text", {"text": "speak, dead bot"})  # the reply's voice fails: logged, not fatal
    await peer.wait("bot_response", predicate=lambda e: e.payload.get("is_final") is True, timeout=BOUND)
    await room.close()
    await peer.close()
    peer, room = await handshake(fake)
    try:
        assert fake.engine.bots.pid not in (None, worker)
        assert worker not in workers_of(os.getpid())
    finally:
        await room.close()
        await peer.close()
