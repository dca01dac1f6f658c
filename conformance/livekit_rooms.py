"""What the LiveKit server itself says about rooms: who is still in them."""

from __future__ import annotations

from livekit import api

from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.waiting import WaitTimeout, wait_until

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

    async def gone() -> bool:
        return not await participants(livekit, identity)

    try:
        gone_in_time: bool = await wait_until(gone, timeout=bound, awaited=f"{identity!r} in no room", interval=0.1)
    except WaitTimeout:
        return await participants(livekit, identity)
    assert gone_in_time  # wait_until returns only a truthy value
    return []
