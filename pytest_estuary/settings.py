"""Command-line options, ini keys and environment variables, merged into one settings object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

__all__ = ["SETTINGS_KEY", "EstuarySettings", "add_options"]

# (option, ini key, env var, help); option beats ini beats env.
_LIVEKIT_OPTIONS = (
    ("--livekit-url", "livekit_url", "LIVEKIT_URL", "URL of an external LiveKit server to use"),
    ("--livekit-api-key", "livekit_api_key", "LIVEKIT_API_KEY", "API key of that server"),
    ("--livekit-api-secret", "livekit_api_secret", "LIVEKIT_API_SECRET", "API secret of that server"),
    (
        "--livekit-server-bin",
        "livekit_server_bin",
        "LIVEKIT_SERVER_BIN",
        "livekit-server binary to start (default: PATH, then the build cache)",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("estuary", "Estuary protocol testing (pytest-estuary)")
    for option, ini, env, help_text in _LIVEKIT_OPTIONS:
        group.addoption(option, dest=ini, default=None, help=f"{help_text} (ini {ini}, env {env})")
        parser.addini(ini, f"{help_text} (see {option})", default=None)


def _value(config: pytest.Config, ini: str, env: str) -> str | None:
    from_option = config.getoption(ini)
    if from_option:
        return str(from_option)
    from_ini = config.getini(ini)
    if from_ini:
        return str(from_ini)
    return os.environ.get(env) or None


@dataclass(frozen=True)
class EstuarySettings:
    """Everything the fixtures need to know, from options, ini and environment."""

    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = field(default=None, repr=False)
    livekit_server_bin: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> EstuarySettings:
        values = {ini: _value(config, ini, env) for _, ini, env, _ in _LIVEKIT_OPTIONS}
        return cls(**values)


SETTINGS_KEY = pytest.StashKey[EstuarySettings]()
