"""The network rule: the suite runs in a private namespace, and LiveKit hands out nothing outside it."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from pathlib import Path

import pytest
from livekit import api, rtc

from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer

ALLOWED = ("lo", "estuary0", "estuary1")
NAMESPACE_NET = ipaddress.ip_network("10.213.0.0/24")


def require_namespace() -> None:
    if os.environ.get("ESTUARY_IN_NETNS") != "1":
        pytest.fail("run the suite through scripts/isolated_run.sh (make test does): these tests prove its isolation")


def local_or_namespace(host: str) -> bool:
    address = ipaddress.ip_address(host)
    return address.is_loopback or address in NAMESPACE_NET


def test_only_loopback_and_the_veth_pair_exist() -> None:
    require_namespace()
    # /proc/self/net is this process's namespace (/sys/class/net shows the mounter's).
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    interfaces = sorted(line.split(":")[0].strip() for line in lines)
    assert interfaces == sorted(ALLOWED), interfaces


def test_there_is_no_route_out() -> None:
    require_namespace()
    routes = Path("/proc/self/net/route").read_text().splitlines()[1:]
    default = [line for line in routes if line.split()[1] == "00000000"]
    assert not default, f"a default route exists: {default}"


def test_server_config_hands_out_no_outside_stun_or_turn() -> None:
    require_namespace()
    manager = LiveKitServer(env={"LIVEKIT_NODE_IP": os.environ["LIVEKIT_NODE_IP"]})
    manager.start()
    try:
        config = manager.config_text or ""
    finally:
        manager.stop()
    stun = re.findall(r"^\s+- ([\d.]+):\d+$", config.split("stun_servers:")[1].split("turn:")[0], re.M)
    assert stun and all(local_or_namespace(host) for host in stun), stun
    assert "turn:\n  enabled: false" in config
    assert "use_external_ip: false" in config


@pytest.mark.asyncio
async def test_ice_candidates_in_use_are_inside_the_namespace(livekit_server: LiveKitCredentials) -> None:
    require_namespace()
    grants = api.VideoGrants(room_join=True, room="isolation")
    token = (
        api.AccessToken(livekit_server.api_key, livekit_server.api_secret).with_identity("probe").with_grants(grants)
    )
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(livekit_server.url, token.to_jwt()), 10)
        stats = await room.get_rtc_stats()
        text = str(stats)
        addresses = set(re.findall(r'address: "([^"]+)"', text)) | set(re.findall(r'ip: "([^"]+)"', text))
        assert addresses, "no ICE candidate addresses in the RTC stats"
        outside = [a for a in addresses if ":" not in a and not local_or_namespace(a)]
        assert not outside, f"candidates outside loopback/the namespace: {outside}"
    finally:
        await room.disconnect()
