"""livekit-server itself rejects bad tokens, and says why in the ConnectError."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from livekit import api, rtc

from pytest_estuary.livekit_server import LiveKitCredentials

pytestmark = pytest.mark.asyncio


def make_token(creds: LiveKitCredentials, room: str, *, secret: str | None = None, ttl: float = 600) -> str:
    return (
        api.AccessToken(creds.api_key, secret or creds.api_secret)
        .with_identity(f"user-{secrets.token_hex(3)}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_ttl(timedelta(seconds=ttl))
        .to_jwt()
    )


async def rejection(url: str, token: str) -> str:
    room = rtc.Room()
    try:
        with pytest.raises(rtc.ConnectError) as failure:
            await asyncio.wait_for(room.connect(url, token), 15)
        return str(failure.value)
    finally:
        await room.disconnect()


async def test_wrong_secret_is_rejected(livekit_server: LiveKitCredentials) -> None:
    message = await rejection(livekit_server.url, make_token(livekit_server, "a", secret=secrets.token_urlsafe(36)))
    assert "401" in message and "invalid token" in message.lower(), message


async def test_token_expired_beyond_the_leeway_is_rejected(livekit_server: LiveKitCredentials) -> None:
    message = await rejection(livekit_server.url, make_token(livekit_server, "a", ttl=-120))
    assert "401" in message and "expired" in message.lower(), message


async def test_a_token_for_room_a_never_reaches_room_b(livekit_server: LiveKitCredentials) -> None:
    """The room is the token's grant, not the caller's choice: a room-A token lands in A, unseen in B."""
    in_b, holder = rtc.Room(), rtc.Room()
    try:
        await asyncio.wait_for(in_b.connect(livekit_server.url, make_token(livekit_server, "room-b")), 10)
        await asyncio.wait_for(holder.connect(livekit_server.url, make_token(livekit_server, "room-a")), 10)
        assert holder.name == "room-a"
        await asyncio.sleep(0.5)  # long enough for the SFU to announce a participant to room B
        assert not in_b.remote_participants, f"room B saw {sorted(in_b.remote_participants)}"
    finally:
        await holder.disconnect()
        await in_b.disconnect()


async def test_a_room_token_cannot_administer_rooms(livekit_server: LiveKitCredentials) -> None:
    """A join token is refused by the room service (no roomList/roomAdmin grant)."""
    lk = api.LiveKitAPI(livekit_server.http_url, token=make_token(livekit_server, "room-a"))
    try:
        with pytest.raises(api.TwirpError) as failure:
            await lk.room.list_rooms(api.ListRoomsRequest())
        assert failure.value.status in (401, 403), failure.value
    finally:
        await lk.aclose()
