"""A running LiveKit server for tests: attach to an external one, or start one and own it.

Usable without pytest::

    with LiveKitServer() as creds:
        print(creds.url, creds.api_key)

Sources, in order: an external server (``url``/``api_key``/``api_secret`` or ``LIVEKIT_URL``,
``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``); a binary (``binary``, ``LIVEKIT_SERVER_BIN``, PATH,
the cache filled by ``estuary-livekit install``); ``docker compose`` with the compose file
shipped in the package (``pytest_estuary/data``) where a Docker engine answers.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "LIVEKIT_SERVER_VERSION",
    "LiveKitCredentials",
    "LiveKitServer",
    "LiveKitServerError",
    "cached_binary_path",
    "redact",
]

log = logging.getLogger("pytest_estuary.livekit_server")

LIVEKIT_SERVER_VERSION = "v1.13.5"
INSTALL_COMMAND = "estuary-livekit install"
WORKDIR_PREFIX = "estuary-livekit-"
OWNER_FILE = "owner"  # in each work dir: "<pid> <start time>" of the process that made it
_PR_SET_PDEATHSIG = 1
GRACEFUL_STOP = 1.0  # seconds livekit-server gets to drain before it is told to force the stop


def redact(secret: str) -> str:
    """A secret shown as its first four characters only."""
    return f"{secret[:4]}…" if secret else "<empty>"


class LiveKitServerError(RuntimeError):
    """A LiveKit server could not be found, started or reached; the message names the step."""


@dataclass(frozen=True)
class LiveKitCredentials:
    """Where a LiveKit server is and how to sign tokens for it."""

    url: str
    api_key: str
    api_secret: str = field(repr=False)
    source: str = "external"

    def __repr__(self) -> str:
        return (
            f"LiveKitCredentials(url={self.url!r}, api_key={self.api_key!r}, "
            f"api_secret={redact(self.api_secret)!r}, source={self.source!r})"
        )

    @property
    def http_url(self) -> str:
        """The server's HTTP base URL (for health checks and the Twirp API)."""
        return self.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def cache_dir() -> Path:
    """Where built livekit-server binaries are kept (``PYTEST_ESTUARY_CACHE`` overrides)."""
    explicit = os.environ.get("PYTEST_ESTUARY_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-estuary"


def cached_binary_path() -> Path:
    return cache_dir() / f"livekit-server-{LIVEKIT_SERVER_VERSION}" / "livekit-server"


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), None when no such process runs.

    A pid alone can be reused by a later process; pid and start time together name one process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"  # exists but unreadable: treat as alive
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else "?"


def _owner_record() -> str:
    pid = os.getpid()
    return f"{pid} {_process_start(pid) or '?'}"


def _owner_alive(record: str) -> bool:
    parts = record.split()
    if not parts or not parts[0].isdigit():
        return False
    start = _process_start(int(parts[0]))
    if start is None:
        return False
    return len(parts) < 2 or "?" in (start, parts[1]) or start == parts[1]


def remove_stale_workdirs(tmp: Path | None = None) -> list[Path]:
    """Delete this user's ``estuary-livekit-*`` work dirs whose owning process is gone.

    A test process killed before its teardown leaves its dir behind, and the config in it holds
    an API secret. A dir without an owner record (an older version's, or one just being made) is
    left alone until it is a minute old.
    """
    removed: list[Path] = []
    base = tmp or Path(tempfile.gettempdir())
    try:
        candidates = list(base.glob(WORKDIR_PREFIX + "*"))
    except OSError:
        return removed
    for path in candidates:
        try:
            info = path.lstat()
            if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
                continue
            owner = path / OWNER_FILE
            if owner.exists():
                stale = not _owner_alive(owner.read_text())
            else:
                stale = time.time() - info.st_mtime > 60
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.info("removed the work dir of a livekit-server whose owner is gone: %s", path)
    return removed


def free_port(kind: int = socket.SOCK_STREAM, host: str = "0.0.0.0") -> int:
    """A port free on every address: livekit-server binds it on loopback and on the node IP,
    where another process's WebRTC socket may hold a port that is free on 127.0.0.1."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the spawning thread dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def render_config(
    *,
    http_port: int,
    tcp_port: int,
    udp_port: int,
    node_ip: str,
    api_key: str,
    api_secret: str,
) -> str:
    """The YAML config for a test server: one room's worth of short timeouts, no outside STUN.

    livekit-server falls back to public STUN hosts when ``stun_servers`` is empty, so it is
    pointed at its own ICE port instead: a STUN address that never leaves this machine.
    """
    bind = ["127.0.0.1"] if node_ip == "127.0.0.1" else ["127.0.0.1", node_ip]
    return "\n".join(
        [
            f"port: {http_port}",
            "bind_addresses:",
            *[f"  - {address}" for address in bind],
            "rtc:",
            f"  tcp_port: {tcp_port}",
            f"  udp_port: {udp_port}",
            "  use_external_ip: false",
            "  enable_loopback_candidate: true",
            *_ice_addresses(node_ip),
            "  stun_servers:",
            f"    - {node_ip}:{udp_port}",
            "turn:",
            "  enabled: false",
            "room:",
            "  empty_timeout: 10",
            "  departure_timeout: 2",
            "logging:",
            "  level: info",
            "keys:",
            f"  {api_key}: {api_secret}",
            "",
        ]
    )


def _ice_addresses(node_ip: str) -> list[str]:
    """Config lines that keep each ICE candidate's address and the socket behind it the same.

    livekit-server opens its UDP mux on every local address; a ``node_ip`` rewrites all their
    candidates to that one address. A fresh server then sometimes answered ICE from another
    address's socket, no client accepted the answers, and every connect to that server failed
    (5 of 30 starts). In the namespace every local address is ours, so none is rewritten: each
    advertises itself (0 of 40 failed, and connects took 105 ms instead of the 160-195 ms of a
    node_ip filtered down to one socket). On loopback, without a namespace, the filter keeps just
    the loopback socket.
    """
    if node_ip != "127.0.0.1":
        return []
    return [f"  node_ip: {node_ip}", "  ips:", "    includes:", f"      - {node_ip}/32"]


class LiveKitServer:
    """Gives a running LiveKit server as :class:`LiveKitCredentials`; stops what it started."""

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        node_ip: str | None = None,
        ready_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        allow_docker: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if env is None else env
        self._url = url or environ.get("LIVEKIT_URL") or None
        self._api_key = api_key or environ.get("LIVEKIT_API_KEY") or None
        self._api_secret = api_secret or environ.get("LIVEKIT_API_SECRET") or None
        self._binary = str(binary) if binary else environ.get("LIVEKIT_SERVER_BIN") or None
        self._node_ip = node_ip or environ.get("LIVEKIT_NODE_IP") or "127.0.0.1"
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._allow_docker = allow_docker
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._compose_project: str | None = None
        self.credentials: LiveKitCredentials | None = None
        self.config_text: str | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def owns_process(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path | None:
        return Path(self._workdir.name) / "livekit-server.log" if self._workdir else None

    def start(self) -> LiveKitCredentials:
        """Find or start a server and wait until it answers; idempotent."""
        if self.credentials is not None:
            return self.credentials
        if self._url:
            self.credentials = self._attach()
        else:
            binary = self._find_binary()
            if binary is not None:
                self.credentials = self._spawn(binary)
            elif self._allow_docker and self._docker_available():
                self.credentials = self._compose_up()
            else:
                raise LiveKitServerError(self._nothing_found_message())
        log.info("LiveKit server ready: %r", self.credentials)
        return self.credentials

    def stop(self) -> None:
        """Stop what this object started (TERM, then KILL after the deadline); idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # The first TERM drains participants; a second one forces the stop; KILL is the backstop.
            for sig, wait in ((signal.SIGTERM, GRACEFUL_STOP), (signal.SIGTERM, self._stop_timeout)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                log.warning("livekit-server did not stop within %.1f s; killing", GRACEFUL_STOP + self._stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(self._stop_timeout)
        if self._compose_project is not None:
            self._compose(["down", "--remove-orphans"], self._compose_project, check=False)
            self._compose_project = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self.credentials = None

    def tail_log(self, lines: int = 20) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "<no log>"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LiveKitCredentials:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- sources ------------------------------------------------------------------------------

    def _attach(self) -> LiveKitCredentials:
        assert self._url is not None
        missing = [
            name
            for name, value in (("LIVEKIT_API_KEY", self._api_key), ("LIVEKIT_API_SECRET", self._api_secret))
            if not value
        ]
        if missing:
            raise LiveKitServerError(
                f"external LiveKit server {self._url} given, but {' and '.join(missing)} "
                "(or the matching option) is not set"
            )
        if not self._url.startswith(("ws://", "wss://", "http://", "https://")):
            raise LiveKitServerError(
                f"LIVEKIT_URL must start with ws://, wss://, http:// or https://, got {self._url!r}"
            )
        url = self._url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        assert self._api_key is not None and self._api_secret is not None
        creds = LiveKitCredentials(url, self._api_key, self._api_secret, source="external")
        if not _http_ok(creds.http_url.rstrip("/") + "/", timeout=3.0):
            raise LiveKitServerError(f"external LiveKit server at {self._url} does not answer GET /")
        return creds

    def _find_binary(self) -> Path | None:
        if self._binary:
            path = Path(self._binary)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise LiveKitServerError(
                    f"livekit-server binary {self._binary!r} (option or LIVEKIT_SERVER_BIN) "
                    "does not exist or is not executable"
                )
            return path
        on_path = shutil.which("livekit-server")
        if on_path:
            return Path(on_path)
        cached = cached_binary_path()
        return cached if cached.is_file() else None

    def _nothing_found_message(self) -> str:
        return (
            "no LiveKit server available. Looked for: an external server (--livekit-url / "
            "LIVEKIT_URL: not set); a binary (--livekit-server-bin / LIVEKIT_SERVER_BIN: not set; "
            f"'livekit-server' on PATH: not found; cache {cached_binary_path()}: not found); "
            "docker compose: no Docker engine answers. "
            f"Install the pinned build with: {INSTALL_COMMAND}"
        )

    def _spawn(self, binary: Path) -> LiveKitCredentials:
        remove_stale_workdirs()
        self._workdir = tempfile.TemporaryDirectory(prefix=WORKDIR_PREFIX)
        workdir = Path(self._workdir.name)
        (workdir / OWNER_FILE).write_text(_owner_record())
        api_key = "estuary-" + secrets.token_hex(4)
        # hex: >= 32 characters (PyJWT warns below that), and never read as an option or YAML syntax
        api_secret = secrets.token_hex(24)
        http_port = free_port()
        self.config_text = render_config(
            http_port=http_port,
            tcp_port=free_port(),
            udp_port=free_port(socket.SOCK_DGRAM),
            node_ip=self._node_ip,
            api_key=api_key,
            api_secret=api_secret,
        )
        config_path = workdir / "livekit.yaml"
        config_path.write_text(self.config_text)
        config_path.chmod(0o600)
        log_file = (workdir / "livekit-server.log").open("wb")
        try:
            self._process = subprocess.Popen(
                [str(binary), "--config", str(config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: stop() signals the whole group
                preexec_fn=_die_with_parent,
            )
        finally:
            log_file.close()
        url = f"ws://127.0.0.1:{http_port}"
        self._wait_ready(f"http://127.0.0.1:{http_port}/", binary)
        return LiveKitCredentials(url, api_key, api_secret, source=f"binary:{binary}")

    def _wait_ready(self, health_url: str, binary: Path) -> None:
        deadline = time.monotonic() + self._ready_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            status = self._process.poll()
            if status is not None:
                # livekit-server exits 0 even when it cannot bind, so the log is the evidence.
                tail = self.tail_log()
                hint = " (port in use)" if "address already in use" in tail else ""
                self.stop()
                raise LiveKitServerError(
                    f"livekit-server {binary} exited with status {status} "
                    f"before it was ready{hint}; last log lines:\n{tail}"
                )
            if _http_ok(health_url, timeout=0.5):
                return
            time.sleep(0.02)
        tail = self.tail_log()
        self.stop()
        raise LiveKitServerError(
            f"livekit-server {binary} not ready after {self._ready_timeout:.1f} s "
            f"(GET {health_url} never answered 200); last log lines:\n{tail}"
        )

    # -- docker compose -----------------------------------------------------------------------

    @staticmethod
    def _docker_available() -> bool:
        if shutil.which("docker") is None:
            return False
        try:
            result = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    @staticmethod
    def compose_file() -> Path:
        """The compose file shipped as package data (the repository's top-level file is its twin)."""
        return Path(__file__).resolve().parent / "data" / "docker-compose.livekit.yml"

    def _compose(self, args: list[str], project: str, *, check: bool, env: dict[str, str] | None = None) -> None:
        command = ["docker", "compose", "-f", str(self.compose_file()), "-p", project, *args]
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if check and result.returncode != 0:
            raise LiveKitServerError(f"'docker compose {' '.join(args)}' failed: {result.stderr[-500:]}")

    def _compose_up(self) -> LiveKitCredentials:
        if not self.compose_file().is_file():
            raise LiveKitServerError(f"compose file {self.compose_file()} not found")
        api_key = "estuary-" + secrets.token_hex(4)
        api_secret = secrets.token_hex(24)
        http_port = free_port()
        project = "estuary-" + secrets.token_hex(3)
        env = dict(os.environ)
        env.update(
            LIVEKIT_API_KEY=api_key,
            LIVEKIT_API_SECRET=api_secret,
            LIVEKIT_HTTP_PORT=str(http_port),
        )
        self._compose(["up", "-d"], project, check=True, env=env)
        self._compose_project = project
        deadline = time.monotonic() + max(self._ready_timeout, 60.0)
        health = f"http://127.0.0.1:{http_port}/"
        while time.monotonic() < deadline:
            if _http_ok(health, timeout=0.5):
                return LiveKitCredentials(f"ws://127.0.0.1:{http_port}", api_key, api_secret, source="docker compose")
            time.sleep(0.2)
        self.stop()
        raise LiveKitServerError(f"docker compose livekit-server not ready at {health}")
