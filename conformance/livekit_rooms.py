"""What the LiveKit server itself says about rooms: who is still in them."""

from __future__ import annotations

import asyncio
import time

from livekit import api

from pytest_estuary.livekit_server import LiveKitCredentials

__all__ = ["participants", "wait_until_gone"]


async def participants(livekit: LiveKitCredentials, identity: str) -> list[str]:
    """Rooms on the LiveKit server where ``identity`` is still a participant."""
    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        found = []
        for room in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
            found += [room.name for p in people.participants if p.identity == identity]
        return found
    finally:
        await lk.aclose()


async def wait_until_gone(livekit: LiveKitCredentials, identity: str, bound: float = 5.0) -> list[str]:
    """Rooms where ``identity`` is still a participant once the SFU had ``bound`` s to notice a leave
    (it drops one that said goodbye within milliseconds; LK-9's 5 s is generous)."""
    deadline = time.monotonic() + bound
    while (left := await participants(livekit, identity)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return left
