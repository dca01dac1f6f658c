"""Factories behind the conformance fixtures: each closes what it made."""

from __future__ import annotations

from typing import Any

from conformance.peer import RawPeer
from conformance.rtc_peer import RtcPeer
from pytest_estuary.clients import ClientFailure, ClientKind, ClientUnderTest
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.tested_clients import TestedClients
from pytest_estuary.verdicts import step

__all__ = ["PeerFactory", "RtcPeerFactory", "SteppedTestedClients"]


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


class SteppedTestedClients(TestedClients):
    """Clients under test whose connect is a step of CONN-3 (CONN-2 for a client that authenticates
    in the CONNECT packet): a client case is about the client, so a server that opens no session
    BLOCKS it."""

    def __init__(self, kind: ClientKind, target: EstuaryTarget, server: Any) -> None:
        super().__init__(kind, target)
        self.server = server

    async def __call__(self, *, connect: bool = True, **overrides: Any) -> ClientUnderTest:
        # A step waits the suite's timeout, as the raw peers' steps do; a case that tests a bound
        # passes its own (ERR-2's token_timeout=1.0).
        for setting, bound in (("token_timeout", 10.0), ("ready_timeout", 5.0), ("connect_timeout", 10.0)):
            overrides.setdefault(setting, min(bound, self.target.timeout))
        client = await super().__call__(connect=False, **overrides)
        if connect:
            try:
                await client.connect()
            except ClientFailure as exc:
                event_auth = self.server is not None and self.server.events.find(name="authenticate", direction="in")
                with step("CONN-3" if event_auth else "CONN-2", "the client connects and gets session_info"):
                    raise exc
        return client
