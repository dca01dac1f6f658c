"""pytest hooks for pytest-estuary: options, markers, report. Fixtures live in ``fixtures``."""

from __future__ import annotations

import pytest

from pytest_estuary import settings
from pytest_estuary.fixtures import livekit_server

__all__ = ["livekit_server"]


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[settings.SETTINGS_KEY] = settings.EstuarySettings.from_config(config)
