"""Shared by the project's own tests: pytester, and standalone fake servers in their own process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials, cache_dir

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is no package: its helper modules by name
from standalone_fakes import StandaloneFakes

pytest_plugins = ["pytester"]

# pytester gives inner runs a fresh HOME; they must still find the livekit-server build.
os.environ.setdefault("PYTEST_ESTUARY_CACHE", str(cache_dir()))

@pytest.fixture
def standalone_fake(livekit_server: LiveKitCredentials) -> Iterator[StandaloneFakes]:
    """``standalone_fake(misbehave={...}, transcripts=[...])`` starts ``python -m fake_server`` and
    returns what it printed (url, api_key, control_token); every process is stopped at teardown."""
    fakes = StandaloneFakes(livekit_server)
    yield fakes
    fakes.stop_all()
