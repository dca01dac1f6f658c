"""The fixtures pytest-estuary gives downstream projects (thin layers over the engines)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer
from pytest_estuary.settings import SETTINGS_KEY

__all__ = ["livekit_server"]


@pytest.fixture(scope="session")
def livekit_server(request: pytest.FixtureRequest) -> Iterator[LiveKitCredentials]:
    """A running LiveKit server as ``LiveKitCredentials(url, api_key, api_secret, source)``.

    An external server when ``--livekit-url`` (or ``LIVEKIT_URL``) is set, else a
    livekit-server binary started on free ports for this session (one per xdist worker).
    A missing server is an error, never a skip.
    """
    settings = request.config.stash[SETTINGS_KEY]
    manager = LiveKitServer(
        url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret,
        binary=settings.livekit_server_bin,
    )
    credentials = manager.start()
    try:
        yield credentials
    finally:
        manager.stop()
