"""The conformance suite's raw LiveKit peer does not resume a connection the server dropped.

livekit.rtc rejoins after a drop, and LiveKit creates a room on join: a resumed peer brought a
deleted room back (seen through nginx, where the media closed before the leave message came), so
LK-9 saw the room live and blamed the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from livekit import api, rtc

from conformance.rtc_peer import RtcPeer
from pytest_estuary.livekit_server import LiveKitCredentials

pytestmark = pytest.mark.asyncio

QUIET = 2.0  # seconds a resumed connection would need to be back (it took 0.4 s through nginx)


async def test_a_dropped_connection_ends_and_does_not_come_back(
    livekit_server: LiveKitCredentials, mint: Callable[..., str]
) -> None:
    peer = RtcPeer()
    service = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        await peer.join(livekit_server.url, mint("room-dropped", "dropped"), timeout=15)
        # The server asks the client to reconnect (LeaveRequest{Reconnect}): a drop, as the SDK sees it.
        await peer.room.simulate_scenario(rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT)
        await peer.wait_disconnected(timeout=5)
        await asyncio.sleep(QUIET)
        assert peer.changes and peer.changes[0][1] == "reconnecting", peer.changes
        assert peer.room.connection_state == rtc.ConnectionState.CONN_DISCONNECTED, peer.changes
        listed = await service.room.list_participants(api.ListParticipantsRequest(room="room-dropped"))
        assert [p.identity for p in listed.participants] == [], peer.changes
    finally:
        await peer.close(5.0)
        await service.aclose()
