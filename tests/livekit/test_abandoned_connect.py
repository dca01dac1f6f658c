"""A room connect that outlives its bound is abandoned, never cancelled.

livekit.rtc's native side panics and sends its process SIGTERM when a connect it finished is never
acknowledged, which is what cancelling ``Room.connect`` leads to. Under load (three explorer runs
on 2 cores) that killed whole conformance runs, report and all, and fake bot workers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

from livekit import api

from pytest_estuary.livekit_server import LiveKitCredentials

ROOM = "room-abandoned"
TRIES = 4
# Each try gives up long before the connect can finish; the process then lives on past the point
# where a cancelled connect had already killed it (within a second, measured).
SCRIPT = """
import asyncio, sys
from livekit import rtc
from pytest_estuary.client.rtc_connect import ConnectTimeout, connect_within, pending_reaps

async def main(url, tokens):
    for token in tokens:
        try:
            await connect_within(rtc.Room(), url, token, 0.001)
        except ConnectTimeout:
            pass
        else:
            sys.exit("a connect finished within 1 ms")
    for _ in range(300):
        if pending_reaps() == 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    print("alive, reaps pending:", pending_reaps())

asyncio.run(main(sys.argv[1], sys.stdin.read().split()))
"""


def test_abandoned_connects_leave_their_room_and_the_process_lives(
    livekit_server: LiveKitCredentials, mint: Callable[..., str]
) -> None:
    tokens = [mint(ROOM, f"abandoned-{n}") for n in range(TRIES)]
    done = subprocess.run(  # the tokens on stdin: a failure shows the command line
        [sys.executable, "-c", SCRIPT, livekit_server.url],
        input=" ".join(tokens), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    assert "alive, reaps pending: 0" in done.stdout

    async def participants() -> list[str]:
        service = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
        try:
            listed = await service.room.list_participants(api.ListParticipantsRequest(room=ROOM))
            return [p.identity for p in listed.participants]
        finally:
            await service.aclose()

    assert asyncio.run(participants()) == []
