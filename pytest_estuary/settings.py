"""Command-line options, ini keys and environment variables, merged into one settings object."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_estuary.explore_replay import ExploreReplay, ReplayError, parse_replay

__all__ = ["SETTINGS_KEY", "EstuarySettings", "add_options", "redact_url"]

Mode = Literal["fake", "live"]


@dataclass(frozen=True)
class _Option:
    flag: str
    dest: str
    help: str
    env: str | None = None
    default: str | None = None
    kind: Literal["str", "float", "flag"] = "str"


# Option beats ini beats environment beats default. Secrets and URLs have environment twins.
_OPTIONS = (
    _Option("--estuary-live", "estuary_live", "run against a real server instead of the embedded fake", kind="flag"),
    _Option("--estuary-url", "estuary_url", "Estuary server URL for --estuary-live", env="ESTUARY_URL"),
    _Option(
        "--estuary-api-key",
        "estuary_api_key",
        "Estuary API key for --estuary-live (never printed)",
        env="ESTUARY_API_KEY",
    ),
    _Option(
        "--estuary-ca-file",
        "estuary_ca_file",
        "PEM bundle of CA certificates trusted besides the system store (Socket.IO and LiveKit alike)",
        env="ESTUARY_CA_FILE",
    ),
    _Option(
        "--estuary-socketio-path",
        "estuary_socketio_path",
        "the path the server serves Socket.IO at, e.g. /estuary/socket.io/ behind a gateway",
        env="ESTUARY_SOCKETIO_PATH",
        default="/socket.io/",
    ),
    _Option(
        "--estuary-character-id",
        "estuary_character_id",
        "character id to talk to",
        env="ESTUARY_CHARACTER_ID",
        default="pytest-character",
    ),
    _Option(
        "--estuary-player-id",
        "estuary_player_id",
        "player id the clients use",
        env="ESTUARY_PLAYER_ID",
        default="pytest-player",
    ),
    _Option(
        "--estuary-timeout",
        "estuary_timeout",
        "seconds to wait for a server reply in conformance cases",
        env="ESTUARY_TIMEOUT",
        default="10",
        kind="float",
    ),
    _Option("--estuary-report", "estuary_report", "write the JSON conformance report to this path"),
    _Option("--estuary-report-md", "estuary_report_md", "write the Markdown conformance summary to this path"),
    _Option("--estuary-report-html", "estuary_report_html", "write the conformance report as one HTML page here"),
    _Option(
        "--estuary-report-baseline",
        "estuary_report_baseline",
        "a previous run's JSON report (--estuary-report): the HTML and Markdown show what changed",
    ),
    _Option("--estuary-strict", "estuary_strict", "SHOULD failures fail the run too", kind="flag"),
    _Option(
        "--estuary-fake-misbehave",
        "estuary_fake_misbehave",
        "JSON object of misbehaviour settings the embedded fake applies in every test, e.g. "
        "'{\"no_livekit_ready\": true}': your tests against a server broken that way",
        env="ESTUARY_FAKE_MISBEHAVE",
    ),
    _Option(
        "--estuary-client",
        "estuary_client",
        "the client the client cases (SEL, ERR, LIFE) drive: 'ours' (pytest_estuary.client), 'estuary-sdk' "
        "(the official Python SDK) or 'cmd:<command line>' (any client behind a JSON-lines shim)",
        env="ESTUARY_CLIENT",
        default="ours",
    ),
    _Option(
        "--estuary-explore",
        "estuary_explore",
        "also run the stateful explorer: hypothesis drives the server through client action sequences and "
        "shrinks what breaks (the EXPLORE cases)",
        kind="flag",
    ),
    _Option(
        "--estuary-explore-time",
        "estuary_explore_time",
        "seconds the explorer may spend generating sequences",
        env="ESTUARY_EXPLORE_TIME",
        default="60",
        kind="float",
    ),
    _Option(
        "--estuary-explore-examples",
        "estuary_explore_examples",
        "at most this many sequences (the time budget still applies)",
        env="ESTUARY_EXPLORE_EXAMPLES",
    ),
    _Option("--estuary-explore-seed", "estuary_explore_seed", "the explorer's random seed (default: a fresh one)"),
    _Option(
        "--estuary-explore-replay",
        "estuary_explore_replay",
        "replay one finding exactly: the line its report gives ('LK-9@6.170.27:BLOB'), or a seed",
    ),
    _Option(
        "--estuary-explore-db",
        "estuary_explore_db",
        "keep hypothesis' example database (.hypothesis/) in live mode too (embedded mode always keeps it)",
        kind="flag",
    ),
    _Option("--livekit-url", "livekit_url", "URL of an external LiveKit server for the fake server", env="LIVEKIT_URL"),
    _Option("--livekit-api-key", "livekit_api_key", "API key of that LiveKit server", env="LIVEKIT_API_KEY"),
    _Option(
        "--livekit-api-secret", "livekit_api_secret", "API secret of that LiveKit server", env="LIVEKIT_API_SECRET"
    ),
    _Option(
        "--livekit-server-bin",
        "livekit_server_bin",
        "livekit-server binary to start (default: PATH, then the build cache)",
        env="LIVEKIT_SERVER_BIN",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("estuary", "Estuary protocol testing (pytest-estuary)")
    for opt in _OPTIONS:
        twins = f"ini {opt.dest}" + (f", env {opt.env}" if opt.env else "")
        if opt.kind == "flag":
            group.addoption(
                opt.flag, dest=opt.dest, action="store_true", default=None, help=f"{opt.help} (ini {opt.dest})"
            )
            parser.addini(opt.dest, f"{opt.help} (see {opt.flag})", type="bool", default=False)
        else:
            group.addoption(opt.flag, dest=opt.dest, default=None, help=f"{opt.help} ({twins})")
            parser.addini(opt.dest, f"{opt.help} (see {opt.flag})", default=None)


def _raw(config: pytest.Config, opt: _Option) -> str | bool | None:
    from_option = config.getoption(opt.dest)
    if from_option is not None:
        return from_option  # type: ignore[no-any-return]
    from_ini = config.getini(opt.dest)
    if opt.kind == "flag":
        return bool(from_ini)
    if from_ini:
        return str(from_ini)
    if opt.env and os.environ.get(opt.env):
        return os.environ[opt.env]
    return opt.default


def redact_url(url: str | None) -> str | None:
    """A URL without user info or query string (where tokens and keys tend to hide)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class EstuarySettings:
    """Everything the fixtures and the report need, from options, ini and environment."""

    live: bool = False
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    socketio_path: str = "/socket.io/"
    character_id: str = "pytest-character"
    player_id: str = "pytest-player"
    timeout: float = 10.0
    report_path: Path | None = None
    report_md_path: Path | None = None
    report_html_path: Path | None = None
    report_baseline_path: Path | None = None
    strict: bool = False
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = field(default=None, repr=False)
    livekit_server_bin: str | None = None
    fake_misbehave: dict[str, Any] = field(default_factory=dict)
    client: str = "ours"
    explore: bool = False
    explore_time: float = 60.0
    explore_examples: int | None = None
    explore_seed: int | None = None
    explore_replay: ExploreReplay | None = None
    explore_db: bool = False

    @property
    def mode(self) -> Mode:
        return "live" if self.live else "fake"

    @property
    def livekit_source(self) -> str:
        """Where LiveKit comes from, as the report header says it (no secrets)."""
        if self.live:
            return "the live server's (from its livekit_token replies)"
        if self.livekit_url:
            return f"external {redact_url(self.livekit_url)}"
        if self.livekit_server_bin:
            return f"binary {self.livekit_server_bin}"
        return "livekit-server started for this run (PATH or build cache)"

    @classmethod
    def from_config(cls, config: pytest.Config) -> EstuarySettings:
        raw = {opt.dest: _raw(config, opt) for opt in _OPTIONS}
        timeout_text = str(raw["estuary_timeout"])
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise pytest.UsageError(
                f"--estuary-timeout (or ESTUARY_TIMEOUT) must be a number of seconds, got {timeout_text!r}"
            ) from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise pytest.UsageError(
                f"--estuary-timeout (or ESTUARY_TIMEOUT) must be a finite number of seconds > 0, got {timeout_text!r}"
            )
        settings = cls(
            live=bool(raw["estuary_live"]),
            url=_str(raw["estuary_url"]),
            api_key=_str(raw["estuary_api_key"]),
            ca_file=_ca_file(_str(raw["estuary_ca_file"])),
            socketio_path=_socketio_path(_str(raw["estuary_socketio_path"]) or "/socket.io/"),
            character_id=_str(raw["estuary_character_id"]) or "pytest-character",
            player_id=_str(raw["estuary_player_id"]) or "pytest-player",
            timeout=timeout,
            report_path=_path(raw["estuary_report"]),
            report_md_path=_path(raw["estuary_report_md"]),
            report_html_path=_path(raw["estuary_report_html"]),
            report_baseline_path=_path(raw["estuary_report_baseline"]),
            strict=bool(raw["estuary_strict"]),
            livekit_url=_str(raw["livekit_url"]),
            livekit_api_key=_str(raw["livekit_api_key"]),
            livekit_api_secret=_str(raw["livekit_api_secret"]),
            livekit_server_bin=_str(raw["livekit_server_bin"]),
            fake_misbehave=_json_object("--estuary-fake-misbehave", _str(raw["estuary_fake_misbehave"])),
            client=_str(raw["estuary_client"]) or "ours",
            explore=bool(raw["estuary_explore"]) or bool(_str(raw["estuary_explore_replay"])),
            explore_time=_positive_seconds(
                "--estuary-explore-time (or ESTUARY_EXPLORE_TIME)", raw["estuary_explore_time"]
            ),
            explore_examples=_count(
                "--estuary-explore-examples (or ESTUARY_EXPLORE_EXAMPLES)", raw["estuary_explore_examples"], 1
            ),
            explore_seed=_count("--estuary-explore-seed", raw["estuary_explore_seed"], 0),
            explore_replay=_replay(raw["estuary_explore_replay"]),
            explore_db=bool(raw["estuary_explore_db"]),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Usage errors that name the missing or malformed option and its variable."""
        if self.live:
            missing = []
            if not self.url:
                missing.append("--estuary-url (or ESTUARY_URL)")
            if not self.api_key:
                missing.append("--estuary-api-key (or ESTUARY_API_KEY)")
            if missing:
                raise pytest.UsageError(f"--estuary-live needs {' and '.join(missing)}")
        if self.url and not self.url.startswith(("http://", "https://", "ws://", "wss://")):
            raise pytest.UsageError(
                f"--estuary-url must start with http://, https://, ws:// or wss://, got {redact_url(self.url)!r}"
            )
        from pytest_estuary.clients.registry import resolve_client

        try:
            resolve_client(self.client)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        if self.explore and importlib.util.find_spec("hypothesis") is None:
            raise pytest.UsageError(
                "--estuary-explore needs hypothesis, which is not installed: pip install 'pytest-estuary[explore]'"
            )
        if self.livekit_url and not (self.livekit_api_key and self.livekit_api_secret):
            raise pytest.UsageError(
                "--livekit-url (or LIVEKIT_URL) needs --livekit-api-key and --livekit-api-secret "
                "(or LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
            )


def _positive_seconds(flag: str, value: str | bool | None) -> float:
    text = str(value)
    try:
        seconds = float(text)
    except ValueError:
        raise pytest.UsageError(f"{flag} must be a number of seconds, got {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise pytest.UsageError(f"{flag} must be a finite number of seconds > 0, got {text!r}")
    return seconds


def _count(flag: str, value: str | bool | None, least: int) -> int | None:
    text = _str(value)
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < least:
        raise pytest.UsageError(f"{flag} must be a whole number ≥ {least}, got {text!r}")
    return int(text)


def _replay(value: str | bool | None) -> ExploreReplay | None:
    text = _str(value)
    if text is None:
        return None
    try:
        return parse_replay(text)
    except ReplayError as exc:
        raise pytest.UsageError(str(exc)) from None


def _ca_file(text: str | None) -> Path | None:
    from pytest_estuary.tls import CaFileError, check_ca_file

    if text is None:
        return None
    try:
        return check_ca_file(text, "--estuary-ca-file (or ESTUARY_CA_FILE)")
    except CaFileError as exc:
        raise pytest.UsageError(str(exc)) from None


def _socketio_path(text: str) -> str:
    if not text.startswith("/") or "?" in text or "#" in text or "//" in text:
        raise pytest.UsageError(
            "--estuary-socketio-path (or ESTUARY_SOCKETIO_PATH) must be a path such as /estuary/socket.io/, "
            f"got {text!r}"
        )
    return text


def _json_object(flag: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{flag} must be a JSON object, got {text[:80]!r} ({exc})") from None
    if not isinstance(value, dict):
        raise pytest.UsageError(f"{flag} must be a JSON object of setting → value, got {type(value).__name__}")
    return value


def _str(value: str | bool | None) -> str | None:
    return str(value) if value not in (None, "", False) else None


def _path(value: str | bool | None) -> Path | None:
    text = _str(value)
    return Path(text) if text else None


SETTINGS_KEY = pytest.StashKey[EstuarySettings]()
