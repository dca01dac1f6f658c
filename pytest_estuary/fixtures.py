"""The fixtures pytest-estuary gives downstream projects: thin layers over the engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from pytest_estuary import audio, shadowing
from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer
from pytest_estuary.report import TIMING_PROPERTY
from pytest_estuary.settings import SETTINGS_KEY, EstuarySettings
from pytest_estuary.targets import ClientFactory, EstuaryTarget
from pytest_estuary.tested_clients import CLIENT_KIND_KEY, TestedClients

if TYPE_CHECKING:
    from fake_server import FakeEstuaryServer

__all__ = [
    "estuary_audio",
    "estuary_client",
    "estuary_server",
    "estuary_settings",
    "estuary_target",
    "estuary_tested_client",
    "livekit_server",
    "record_estuary_timing",
    "reset_fake_server",
]

FAKE_ONLY_REASON = "needs control of the embedded fake server; not available with --estuary-live"


@pytest.fixture(scope="session")
def estuary_settings(request: pytest.FixtureRequest) -> EstuarySettings:
    """The merged pytest-estuary settings (options > ini > environment)."""
    return request.config.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def livekit_server(estuary_settings: EstuarySettings) -> Iterator[LiveKitCredentials]:
    """A running LiveKit server as ``LiveKitCredentials(url, api_key, api_secret, source)``.

    An external server when ``--livekit-url`` (or ``LIVEKIT_URL``) is set, else a
    livekit-server binary started on free ports for this session (one per xdist worker).
    A missing server is an error that says where it looked, never a skip.
    """
    manager = LiveKitServer(
        url=estuary_settings.livekit_url,
        api_key=estuary_settings.livekit_api_key,
        api_secret=estuary_settings.livekit_api_secret,
        binary=estuary_settings.livekit_server_bin,
    )
    credentials = manager.start()
    try:
        yield credentials
    finally:
        manager.stop()


@pytest.fixture(scope="session")
def _estuary_fake_engine(
    request: pytest.FixtureRequest, estuary_settings: EstuarySettings
) -> Iterator[FakeEstuaryServer]:
    """One embedded fake Estuary server per session (per xdist worker), on its own thread."""
    if estuary_settings.live:
        pytest.skip(FAKE_ONLY_REASON)
    shadowing.require_ours("fake_server")
    from fake_server import FakeEstuaryServer, LiveKitConfig

    creds: LiveKitCredentials = request.getfixturevalue("livekit_server")
    server = FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def reset_fake_server(server: FakeEstuaryServer, settings: EstuarySettings) -> None:
    """A clean fake for the next test: reset, then the run's ``--estuary-fake-misbehave`` settings."""
    server.reset()
    if settings.fake_misbehave:
        server.misbehave(**settings.fake_misbehave)


@pytest.fixture
def estuary_server(
    request: pytest.FixtureRequest, _estuary_fake_engine: FakeEstuaryServer
) -> Iterator[FakeEstuaryServer]:
    """The embedded fake Estuary server, reset for this test.

    Use ``estuary_server.misbehave(...)``, ``.script(...)``, ``.events`` (the event log) and
    ``.trigger_voice_timeout()``. Skipped with ``--estuary-live``. A protocol violation by a
    client that the server recorded during the test fails the test at teardown.
    """
    reset_fake_server(_estuary_fake_engine, request.config.stash[SETTINGS_KEY])
    yield _estuary_fake_engine
    violations = list(_estuary_fake_engine.events.violations)
    if violations:
        details = "\n".join(
            f"  {v.rule}: expected {v.expected}; actual {v.actual} (session {v.session_id})" for v in violations
        )
        pytest.fail(f"the fake server recorded client protocol violations:\n{details}", pytrace=False)


@pytest.fixture(scope="session")
def estuary_target(request: pytest.FixtureRequest, estuary_settings: EstuarySettings) -> EstuaryTarget:
    """URL and credentials of the server under test: the embedded fake, or the live one."""
    settings = estuary_settings
    if settings.live:
        assert settings.url and settings.api_key  # validated at configure time
        url, api_key = settings.url, settings.api_key
    else:
        engine: FakeEstuaryServer = request.getfixturevalue("_estuary_fake_engine")
        url, api_key = engine.url, engine.api_key
    return EstuaryTarget(
        url=url,
        api_key=api_key,
        character_id=settings.character_id,
        player_id=settings.player_id,
        mode=settings.mode,
        timeout=settings.timeout,
        ca_file=settings.ca_file,
        socketio_path=settings.socketio_path if settings.live else "/socket.io/",  # the fake's own path
    )


@pytest_asyncio.fixture
async def estuary_client(estuary_target: EstuaryTarget) -> AsyncIterator[ClientFactory]:
    """A factory: ``client = await estuary_client(voice_transport="livekit")`` gives a connected
    ``EstuaryClient`` for the target; every client it made is disconnected at teardown."""
    factory = ClientFactory(estuary_target)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest_asyncio.fixture
async def estuary_tested_client(
    request: pytest.FixtureRequest, estuary_target: EstuaryTarget
) -> AsyncIterator[TestedClients]:
    """A factory of clients of the ``--estuary-client`` implementation (a
    :class:`~pytest_estuary.clients.ClientUnderTest` each): ``client = await estuary_tested_client(
    voice_transport="auto")``; a setting or capability the client lacks SKIPs the test."""
    factory = TestedClients(request.config.stash[CLIENT_KIND_KEY], estuary_target)
    try:
        yield factory
    finally:
        await factory.aclose()


class AudioHelpers:
    """Synthetic sounds to say and checks that a sound was heard (see ``pytest_estuary.audio``)."""

    BOT_PITCH_HZ = 220.0
    utterance = staticmethod(audio.utterance)
    tone = staticmethod(audio.tone)
    silence = staticmethod(audio.silence)
    heard_voice = staticmethod(audio.heard_voice)

    def heard_bot(self, pcm: audio.PCM16, sample_rate: int, pitch: float = BOT_PITCH_HZ) -> bool:
        """True when ``pcm`` contains the fake bot's voice (its pitch, for at least 0.3 s)."""
        return audio.heard_voice(pcm, sample_rate, pitch)


@pytest.fixture(scope="session")
def estuary_audio() -> AudioHelpers:
    """Audio helpers: ``utterance()``, ``tone()``, ``silence()``, ``heard_voice()``, ``heard_bot()``."""
    return AudioHelpers()


TimingRecorder = Callable[[str, float], None]


@pytest.fixture
def record_estuary_timing(request: pytest.FixtureRequest) -> TimingRecorder:
    """``record_estuary_timing("token_round_trip", seconds)`` puts a timing into the report."""

    def record(name: str, seconds: float) -> None:
        request.node.user_properties.append((TIMING_PROPERTY, (name, float(seconds))))

    return record
