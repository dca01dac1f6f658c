"""The network rule: the suite runs in a private namespace, and LiveKit hands out nothing outside it.

Outside scripts/isolated_run.sh these tests fail (never skip): CI always runs them inside, and a
pass here is the evidence that media tests sent packets only to loopback or the veth pair.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as signal_proto

from pytest_estuary.livekit_server import LiveKitCredentials

ALLOWED = {"lo", "estuary0", "estuary1"}
NAMESPACE_NET = ipaddress.ip_network("10.213.0.0/24")
SIGNAL_PROTOCOL = "16"


def require_namespace() -> None:
    if os.environ.get("ESTUARY_IN_NETNS") != "1":
        pytest.fail(
            "not inside the private network namespace (ESTUARY_IN_NETNS unset): run the suite through "
            "scripts/isolated_run.sh (make test and .ci/run do); these tests prove its isolation",
            pytrace=False,
        )


def inside(host: str) -> bool:
    """Loopback or the namespace's veth subnet."""
    address = ipaddress.ip_address(host)
    return address.is_loopback or address in NAMESPACE_NET


def join_token(creds: LiveKitCredentials, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="isolation")
    return api.AccessToken(creds.api_key, creds.api_secret).with_identity(identity).with_grants(grants).to_jwt()


def test_only_loopback_and_the_veth_pair_exist() -> None:
    require_namespace()
    # /proc/self/net is this process's namespace (sysfs shows the namespace of whoever mounted it).
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    interfaces = {line.split(":")[0].strip() for line in lines}
    assert interfaces == ALLOWED, f"interfaces {sorted(interfaces)}, expected only {sorted(ALLOWED)}"


def test_addresses_are_loopback_and_the_namespace_subnet() -> None:
    require_namespace()
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, check=True, text=True).stdout)
    addresses = {
        link["ifname"]: sorted(a["local"] for a in link.get("addr_info", []) if a["family"] == "inet") for link in links
    }
    assert addresses == {"lo": ["127.0.0.1"], "estuary0": ["10.213.0.1"], "estuary1": ["10.213.0.2"]}, addresses
    assert os.environ.get("LIVEKIT_NODE_IP") == "10.213.0.1"


def test_there_is_no_route_out() -> None:
    require_namespace()
    routes = Path("/proc/self/net/route").read_text().splitlines()[1:]
    default = [line for line in routes if line.split()[1] == "00000000"]
    assert not default, f"an IPv4 default route exists: {default}"
    destinations = {line.split()[1] for line in routes}
    assert destinations == {"0000D50A"}, f"IPv4 routes other than 10.213.0.0/24: {routes}"  # little-endian hex
    v6 = [line.split() for line in Path("/proc/self/net/ipv6_route").read_text().splitlines()]
    # The kernel's own "unreachable" ::/0 entry sits on lo; a usable default would name a real device.
    v6_default = [f for f in v6 if f[0] == "0" * 32 and f[1] == "00" and f[-1] != "lo"]
    assert not v6_default, f"an IPv6 default route exists: {v6_default}"


def running_server_config(creds: LiveKitCredentials) -> str:
    """The config file of the livekit-server process that serves ``creds`` (found by its HTTP port)."""
    port = urlparse(creds.url).port
    seen = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "comm").read_text().strip() != "livekit-server":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited while we looked
        config_path = Path(argv[argv.index(b"--config") + 1].decode())
        text = config_path.read_text()
        seen.append(f"pid {entry.name}: {config_path}")
        if re.search(rf"^port: {port}$", text, re.M):
            return text
    raise AssertionError(f"no livekit-server process serves port {port} (source {creds.source}); saw {seen}")


def test_running_server_config_hands_out_no_outside_stun_or_turn(livekit_server: LiveKitCredentials) -> None:
    require_namespace()
    config = running_server_config(livekit_server)
    stun_block = config.split("stun_servers:\n")[1].split("\nturn:")[0]
    stun = re.findall(r"^\s+- ([\d.]+):\d+$", stun_block, re.M)
    assert stun and all(inside(host) for host in stun), f"STUN servers {stun} in:\n{stun_block}"
    assert "turn:\n  enabled: false" in config, "TURN must stay off"
    assert "use_external_ip: false" in config, "use_external_ip would ask public STUN for an address"
    node_ip = re.search(r"node_ip: (\S+)", config)
    assert node_ip is None or inside(node_ip.group(1)), f"node_ip {node_ip.group(1)}"


def udp_sockets_on(port: int) -> list[str]:
    """Local addresses of the UDP sockets bound to ``port`` in this network namespace."""
    found = []
    for table, family in (("/proc/net/udp", socket.AF_INET), ("/proc/net/udp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            address, bound_port = line.split()[1].split(":")
            if int(bound_port, 16) == port:
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(socket.inet_ntop(family, words))
    return found


def test_no_ice_candidate_is_rewritten_onto_another_socket(livekit_server: LiveKitCredentials) -> None:
    """livekit-server's UDP mux listens on every local address, and a node_ip rewrites all their
    candidates to that one address; then a fresh server sometimes answered ICE from the wrong
    socket and no client could connect to it. So: a node_ip only with a single socket behind it,
    else no rewriting, and every socket inside loopback or the namespace."""
    config = running_server_config(livekit_server)
    udp_port = re.search(r"udp_port: (\d+)", config)
    assert udp_port, config
    sockets = udp_sockets_on(int(udp_port.group(1)))
    node_ip = re.search(r"node_ip: (\S+)", config)
    if node_ip is not None:
        assert sockets == [node_ip.group(1)]
    else:
        assert sockets and all(inside(address) for address in sockets), sockets


@pytest.mark.asyncio
async def test_join_response_offers_only_namespace_ice_servers(livekit_server: LiveKitCredentials) -> None:
    """What the server really tells a client: the ICE servers in its JoinResponse."""
    require_namespace()
    params = {"access_token": join_token(livekit_server, "signal-probe"), "protocol": SIGNAL_PROTOCOL}
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{livekit_server.url}/rtc", params=params) as ws:
        message = await asyncio.wait_for(ws.receive(), 10)
    assert message.type == aiohttp.WSMsgType.BINARY, f"expected a binary SignalResponse, got {message.type}"
    response = signal_proto.SignalResponse()
    response.ParseFromString(message.data)
    assert response.WhichOneof("message") == "join", f"first signal message: {response.WhichOneof('message')}"
    urls = [url for server in response.join.ice_servers for url in server.urls]
    assert urls, "the server offered no ICE server at all (a client would fall back to its defaults)"
    hosts = [re.match(r"(?:stuns?|turns?):([^:?]+)", url) for url in urls]
    assert all(host and inside(host.group(1)) for host in hosts), f"ICE servers outside the namespace: {urls}"
    assert all(url.startswith("stun:") for url in urls), f"TURN offered: {urls}"


@pytest.mark.asyncio
async def test_ice_candidates_in_use_are_inside_the_namespace(livekit_server: LiveKitCredentials) -> None:
    require_namespace()
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(livekit_server.url, join_token(livekit_server, "ice-probe")), 10)
        stats = await asyncio.wait_for(room.get_rtc_stats(), 5)
    finally:
        await room.disconnect()
    candidates: dict[str, str] = {}
    nominated = []
    for item in [*stats.publisher_stats, *stats.subscriber_stats]:
        kind = item.WhichOneof("stats")
        if kind in ("local_candidate", "remote_candidate"):
            entry = getattr(item, kind)
            candidates[entry.rtc.id] = entry.candidate.address
        elif kind == "candidate_pair" and item.candidate_pair.candidate_pair.nominated:
            nominated.append(item.candidate_pair.candidate_pair)
    # libwebrtc hides peer-reflexive addresses (empty); every address it does show must be inside.
    shown = {address for address in candidates.values() if address}
    assert shown, f"no ICE candidate addresses in the RTC stats: {candidates}"
    outside = sorted(address for address in shown if not inside(address))
    assert not outside, f"ICE candidates outside loopback/the namespace: {outside}"
    assert nominated, "no nominated candidate pair: the connection never completed ICE"
    used = [candidates.get(pair.local_candidate_id, "?") for pair in nominated]
    assert all(address and inside(address) for address in used), f"local side of the pair in use: {used}"
