"""Factories behind the conformance fixtures: each closes what it made."""

from __future__ import annotations

from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer
from pytest_estuary.targets import EstuaryTarget

__all__ = ["PeerFactory", "RtcPeerFactory"]


class PeerFactory:
    """Makes :class:`RawPeer` objects for the target and closes them all at teardown."""

    def __init__(self, target: EstuaryTarget) -> None:
        self.target = target
        self.peers: list[RawPeer] = []

    def __call__(self, name: str | None = None) -> RawPeer:
        peer = RawPeer(self.target, name=name or f"peer{len(self.peers) + 1}")
        self.peers.append(peer)
        return peer

    async def aclose(self) -> None:
        for peer in self.peers:
            await peer.close()


class RtcPeerFactory:
    """Makes :class:`RtcPeer` participants and closes them all at teardown."""

    def __init__(self) -> None:
        self.peers: list[RtcPeer] = []

    def __call__(self) -> RtcPeer:
        self.peers.append(RtcPeer())
        return self.peers[-1]

    async def aclose(self) -> None:
        for one in self.peers:
            await one.close()
