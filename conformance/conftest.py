"""Fixtures of the conformance suites, and the wire dump printed with every failing case."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from conformance import timeline
from conformance.factories import PeerFactory, RtcPeerFactory, SteppedTestedClients
from conformance.peer import WireEvent
from pytest_estuary.clients import Unsupported
from pytest_estuary.fixtures import reset_fake_server
from pytest_estuary.report import TIMELINE_PROPERTY
from pytest_estuary.settings import SETTINGS_KEY
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.tested_clients import CLIENT_KIND_KEY, TestedClients
from pytest_estuary.waiting import WaitTimeout, wait_until_sync

UTTERANCES = Path(__file__).parent / "utterances"
DRAIN_BOUND = 5.0  # LK-9: a closed session's room is gone within 5 s


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Rooms and peers left in reference cycles are finalized now, while livekit's native runtime
    still runs: finalized at interpreter exit, their native handles can abort the process (exit -6,
    "panic in a function that cannot unwind", seen once after a whole suite had passed)."""
    gc.collect()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The EXPLORE cases exist only with --estuary-explore: without it the suite is as it was."""
    if collection_path.name == "explore" and collection_path.parent == Path(__file__).parent:
        return True if not config.stash[SETTINGS_KEY].explore else None
    return None


@pytest.fixture(autouse=True)
def _clean_fake(request: pytest.FixtureRequest, estuary_target: EstuaryTarget) -> Iterator[None]:
    """Every case starts and ends with a clean embedded fake: no setting, script, session or room
    of another case can change its verdict. A case whose own sessions or rooms outlive it (its
    peers and clients are closed first) fails at teardown."""
    if estuary_target.mode != "fake":
        yield
        return
    engine: Any = request.getfixturevalue("_estuary_fake_engine")
    settings = request.getfixturevalue("estuary_settings")
    reset_fake_server(engine, settings)
    yield
    try:
        wait_until_sync(
            lambda: not (engine.sessions or engine.live_rooms()),
            timeout=DRAIN_BOUND,
            awaited="the case's sessions and rooms gone after its peers closed",
            seen=lambda: (
                f"sessions of {sorted(str(s.player_id) for s in engine.sessions)}, rooms {engine.live_rooms()}"
            ),
        )
    except WaitTimeout as exc:
        engine.reset()
        pytest.fail(f"the case left state behind: {exc}", pytrace=False)
    engine.reset()


@pytest.fixture(autouse=True)
def _case_timeline(request: pytest.FixtureRequest, estuary_target: EstuaryTarget, _clean_fake: None) -> Iterator[None]:
    """The case's protocol events for the report (TIMELINE_PROPERTY), from its time zero (the fake
    already reset) to its end (its peers and clients closed; the fake not yet reset again)."""
    timeline.begin()
    yield
    server_log = None
    if estuary_target.mode == "fake":
        server_log = request.getfixturevalue("_estuary_fake_engine").events.all()
    entries = timeline.finish(server_log)
    if entries:
        request.node.user_properties.append((TIMELINE_PROPERTY, entries))


@pytest_asyncio.fixture
async def tested_client(
    request: pytest.FixtureRequest, estuary_target: EstuaryTarget
) -> AsyncIterator[SteppedTestedClients]:
    """``client = await tested_client(voice_transport="livekit")``: a connected client of the
    ``--estuary-client`` implementation (see :class:`SteppedTestedClients`), closed at teardown."""
    server = request.getfixturevalue("estuary_server") if estuary_target.mode == "fake" else None
    factory = SteppedTestedClients(request.config.stash[CLIENT_KIND_KEY], estuary_target, server)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """An action the client under test cannot do SKIPs the case, with the client's reason."""
    try:
        return (yield)
    except Unsupported as exc:
        pytest.skip(f"the client under test cannot do this: {exc}")


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
    clients = funcargs.get("tested_client")
    if isinstance(clients, TestedClients):
        for client in clients.clients:
            lines = [f"  {WireEvent(0.0, 'in', e.name, (e.payload,)).describe()}" for e in client.events[-12:]]
            blocks.append(f"client {client.player_id}:\n" + ("\n".join(lines) or "  <nothing>"))
    return "\n".join(blocks)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    clients = getattr(item, "funcargs", {}).get("tested_client")
    if report.when == "call" and isinstance(clients, TestedClients):
        for client in clients.clients:  # closed (and forgotten) at teardown: their events are kept
            timeline.register(client)
    if report.when == "call" and report.failed:
        dump = _wire_dump(item)
        if dump:
            report.sections.append(("last events on the wire", dump))
    return report
