"""Fixtures of the conformance suites, and the wire dump printed with every failing case."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import pytest_asyncio

from conformance.factories import PeerFactory, RtcPeerFactory
from pytest_estuary.targets import ClientFactory, EstuaryTarget

UTTERANCES = Path(__file__).parent / "utterances"


@pytest_asyncio.fixture
async def peer(estuary_target: EstuaryTarget) -> AsyncIterator[PeerFactory]:
    """``p = peer()`` gives an unconnected raw Socket.IO peer for the target."""
    factory = PeerFactory(estuary_target)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest_asyncio.fixture
async def rtc_peer() -> AsyncIterator[RtcPeerFactory]:
    """``room = rtc_peer()`` gives a raw LiveKit participant, disconnected at teardown."""
    factory = RtcPeerFactory()
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture(scope="session")
def utterance_files() -> list[tuple[Path, str]]:
    """The shipped real-speech WAV files with the text each one says."""
    return [(wav, wav.with_suffix(".txt").read_text().strip()) for wav in sorted(UTTERANCES.glob("*.wav"))]


def _wire_dump(item: pytest.Item) -> str:
    funcargs = getattr(item, "funcargs", {})
    blocks: list[str] = []
    peers = funcargs.get("peer")
    if isinstance(peers, PeerFactory):
        blocks += [f"{p.name}:\n{p.tail()}" for p in peers.peers]
    clients = funcargs.get("estuary_client")
    if isinstance(clients, ClientFactory):
        for client in clients.clients:
            history = getattr(client, "history", [])[-12:]
            lines = [f"  <- {name} {str(payload)[:160]}" for _, name, payload in history]
            blocks.append(f"client {getattr(client, 'player_id', '?')}:\n" + ("\n".join(lines) or "  <nothing>"))
    return "\n".join(blocks)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        dump = _wire_dump(item)
        if dump:
            report.sections.append(("last events on the wire", dump))
    return report
