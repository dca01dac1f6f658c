"""livekit-server itself rejects bad tokens, and its own reason text reaches the ConnectError.

The texts are livekit-server v1.13.5's (pkg/service/auth.go, utils.go) as livekit.rtc 1.2.1
reports them, e.g. ``engine: signal failure: client error: 401 Unauthorized - invalid token:
<jwt>, error: token signature is invalid: signature is invalid``.

Room A vs room B: the server takes the room from the token's grant (``EnsureJoinPermission``)
and offers no way to ask for another, so "a room-A token used to join room B" is shown as: the
holder lands in A, is absent from B by the server's own participant list, and never appears to
a participant in B; and a join token that names no room at all is refused ("no room name").
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from livekit import api, rtc

from pytest_estuary.livekit_server import LiveKitCredentials

pytestmark = pytest.mark.asyncio

Refused = Callable[[str], Awaitable[str]]


def raw_token(creds: LiveKitCredentials, identity: str, video: dict[str, object]) -> str:
    """A token with exactly these grants (livekit-api's builder refuses a join grant without a room)."""
    now = int(time.time())
    claims = {"iss": creds.api_key, "sub": identity, "nbf": now - 5, "exp": now + 600, "video": video}
    return jwt.encode(claims, creds.api_secret, algorithm="HS256")


async def test_wrong_secret_is_rejected(mint: Callable[..., str], refused: Refused) -> None:
    message = await refused(mint("room-a", secret=secrets.token_urlsafe(36)))
    assert "401 Unauthorized - invalid token" in message, message
    assert "token signature is invalid" in message, message


async def test_token_expired_beyond_the_leeway_is_rejected(mint: Callable[..., str], refused: Refused) -> None:
    message = await refused(mint("room-a", ttl=-120))
    assert "401 Unauthorized - invalid token" in message, message
    assert "token is expired" in message, message


async def test_token_expired_within_the_leeway_is_still_accepted(
    livekit_server: LiveKitCredentials,
    mint: Callable[..., str],
    rooms: Callable[[], rtc.Room],
    bounded: Callable[..., Awaitable[Any]],
) -> None:
    """The other side of the 60 s leeway: 30 s past exp still joins, so the test above needs > 60 s."""
    room = rooms()
    await bounded(room.connect(livekit_server.url, mint("room-a", ttl=-30)), 10, "a join with a 30 s stale token")
    assert room.isconnected()


async def test_join_token_without_a_room_is_rejected(livekit_server: LiveKitCredentials, refused: Refused) -> None:
    message = await refused(raw_token(livekit_server, "roomless", {"roomJoin": True}))
    assert "400 Bad Request - no room name" in message, message


async def test_room_grant_without_join_permission_is_rejected(
    livekit_server: LiveKitCredentials, refused: Refused
) -> None:
    message = await refused(raw_token(livekit_server, "admin-only", {"room": "room-a", "roomAdmin": True}))
    assert "401 Unauthorized - permissions denied" in message, message


async def test_a_token_for_room_a_never_reaches_room_b(
    livekit_server: LiveKitCredentials,
    mint: Callable[..., str],
    rooms: Callable[[], rtc.Room],
    bounded: Callable[..., Awaitable[Any]],
) -> None:
    """The room is the token's grant, not the caller's choice: a room-A token lands in A, unseen in B."""
    room_a, room_b = f"room-a-{secrets.token_hex(3)}", f"room-b-{secrets.token_hex(3)}"
    in_a, in_b, holder = rooms(), rooms(), rooms()
    await bounded(in_b.connect(livekit_server.url, mint(room_b, "in-b")), 10, "a participant to join room B")
    await bounded(in_a.connect(livekit_server.url, mint(room_a, "in-a")), 10, "a participant to join room A")
    seen_in_a: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def announced(participant: rtc.RemoteParticipant) -> None:
        if not seen_in_a.done():
            seen_in_a.set_result(participant.identity)

    in_a.on("participant_connected", announced)
    await bounded(holder.connect(livekit_server.url, mint(room_a, "holder")), 10, "the room-A token holder to join")

    assert holder.name == room_a
    # Room A announcing the holder is the positive control: B had the same time to see it.
    assert (
        await bounded(seen_in_a, 5, "room A to announce the holder", seen=lambda: list(in_a.remote_participants))
        == "holder"
    )
    assert not in_b.remote_participants, f"room B saw {sorted(in_b.remote_participants)}"
    lk = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        listed = {
            name: sorted(
                p.identity
                for p in (await lk.room.list_participants(api.ListParticipantsRequest(room=name))).participants
            )
            for name in (room_a, room_b)
        }
    finally:
        await lk.aclose()
    assert listed == {room_a: ["holder", "in-a"], room_b: ["in-b"]}, listed


async def test_a_room_token_cannot_administer_rooms(
    livekit_server: LiveKitCredentials, mint: Callable[..., str]
) -> None:
    """A join token is refused by the room service (no roomList/roomAdmin grant)."""
    lk = api.LiveKitAPI(livekit_server.http_url, token=mint("room-a"))
    try:
        with pytest.raises(api.TwirpError) as failure:
            await lk.room.list_rooms(api.ListRoomsRequest())
    finally:
        await lk.aclose()
    assert (failure.value.status, failure.value.message) == (401, "permissions denied"), failure.value
