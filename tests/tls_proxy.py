"""Staging as it really is, on loopback: certificates (trustme), nginx terminating TLS in front of
a standalone fake and of livekit-server's signalling, tinyproxy as the CI runner's HTTP proxy.

nginx and tinyproxy run as children of the test with their own temporary prefix, config, pid
file and logs, on free loopback ports; ``stop()`` ends them (TERM, then KILL), and a parent-death
signal ends them if the test process dies first.
"""

from __future__ import annotations

import ctypes
import datetime
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["Certificates", "Nginx", "SilentListener", "TinyProxy", "free_port"]

START_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_listening(port: int, what: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}: {_tail(log)}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:g} s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "<no log>"


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass(frozen=True)
class Certificates:
    """PEM files: the staging CA, and certificates for each way a certificate can be wrong."""

    ca: Path  # what --estuary-ca-file gets
    good: tuple[Path, Path]  # localhost + 127.0.0.1, from the CA
    other_ca: tuple[Path, Path]  # localhost, from a CA nobody trusts
    wrong_host: tuple[Path, Path]  # staging.example.com only
    expired: tuple[Path, Path]  # localhost, expired yesterday

    @classmethod
    def make(cls, directory: Path) -> Certificates:
        directory.mkdir(parents=True, exist_ok=True)
        ca, stranger = trustme.CA(), trustme.CA()
        now = datetime.datetime.now(datetime.UTC)
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))

        def pair(name: str, leaf: trustme.LeafCert) -> tuple[Path, Path]:
            cert, key = directory / f"{name}.crt", directory / f"{name}.key"
            leaf.private_key_pem.write_to_path(str(key))
            cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
            return cert, key

        expired = ca.issue_cert(
            "localhost", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
        )
        return cls(
            ca=directory / "ca.pem",
            good=pair("good", ca.issue_cert("localhost", "127.0.0.1")),
            other_ca=pair("other-ca", stranger.issue_cert("localhost", "127.0.0.1")),
            wrong_host=pair("wrong-host", ca.issue_cert("staging.example.com")),
            expired=pair("expired", expired),
        )


_UPGRADE = """
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_read_timeout 300s;
        proxy_buffering off;"""


class Nginx:
    """nginx terminating TLS: ``ports`` names each server block's loopback port.

    - ``tls``: the staging front door, good certificate; Socket.IO at ``/socket.io/`` and, as behind
      a gateway, at ``/estuary/socket.io/``;
    - ``livekit``: wss in front of livekit-server; ``livekit_wrong_host``: the same, wrong certificate;
    - ``other_ca``, ``wrong_host``, ``expired``: the same front door with a bad certificate;
    - ``plain``: the same front door without TLS.
    """

    def __init__(self, directory: Path, certificates: Certificates, livekit_port: int) -> None:
        self.prefix = directory
        self.certificates = certificates
        self.fake_port, self.livekit_port = 0, livekit_port
        names = ("tls", "livekit", "livekit_wrong_host", "other_ca", "wrong_host", "expired", "plain")
        self.ports = {name: free_port() for name in names}
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        c = self.certificates
        fake, livekit = f"http://127.0.0.1:{self.fake_port}", f"http://127.0.0.1:{self.livekit_port}"
        front = f"""
        location /socket.io/ {{ proxy_pass {fake}; {_UPGRADE} }}
        location /estuary/socket.io/ {{ proxy_pass {fake}/socket.io/; {_UPGRADE} }}"""

        def tls_server(port: int, pair: tuple[Path, Path], body: str) -> str:
            return f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {pair[0]};
        ssl_certificate_key {pair[1]};
        {body}
    }}"""

        servers = [
            tls_server(self.ports["tls"], c.good, front),
            tls_server(self.ports["livekit"], c.good, f"location / {{ proxy_pass {livekit}; {_UPGRADE} }}"),
            tls_server(self.ports["livekit_wrong_host"], c.wrong_host, f"location / {{ proxy_pass {livekit}; }}"),
            tls_server(self.ports["other_ca"], c.other_ca, front),
            tls_server(self.ports["wrong_host"], c.wrong_host, front),
            tls_server(self.ports["expired"], c.expired, front),
            f"\n    server {{\n        listen 127.0.0.1:{self.ports['plain']};\n        {front}\n    }}",
        ]
        temp = self.prefix / "temp"
        return f"""
worker_processes 1;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {self.prefix}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    {"".join(servers)}
}}
"""

    def start(self, fake_port: int) -> Nginx:
        """Serve, in front of the fake server at ``fake_port`` (livekit's port was given before)."""
        self.fake_port = fake_port
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise AssertionError("nginx is not installed: run scripts/install_tls_proxy.sh")
        (self.prefix / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config())
        log = self.prefix / "error.log"
        with open(self.prefix / "stderr.log", "wb") as stderr:
            self.process = subprocess.Popen(
                [binary, "-p", str(self.prefix), "-c", str(conf)],
                stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=_die_with_parent,
            )  # fmt: skip
        for port in self.ports.values():
            _wait_listening(port, "nginx", self.prefix / "stderr.log" if not log.exists() else log, self.process)
        return self

    def url(self, name: str, scheme: str = "https") -> str:
        return f"{scheme}://localhost:{self.ports[name]}"

    def stop(self) -> None:
        _stop(self.process)


class TinyProxy:
    """tinyproxy on a free loopback port; ``connect_ports`` limits the CONNECT ports it allows
    (empty: any), so a refusing proxy is one line of config away. Its log shows each CONNECT."""

    def __init__(self, directory: Path, *, connect_ports: tuple[int, ...] = ()) -> None:
        self.directory = directory
        self.port = free_port()
        self.connect_ports = connect_ports
        self.log = directory / "tinyproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TinyProxy:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not Path(binary).exists():
            raise AssertionError("tinyproxy is not installed: run scripts/install_tls_proxy.sh")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "tinyproxy.conf"
        lines = [
            f"Port {self.port}", "Listen 127.0.0.1", "Timeout 600", f"LogFile \"{self.log}\"", "LogLevel Connect",
            f"PidFile \"{self.directory / 'tinyproxy.pid'}\"", "MaxClients 100", "Allow 127.0.0.1",
            *(f"ConnectPort {port}" for port in self.connect_ports),
        ]  # fmt: skip
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [binary, "-d", "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        _wait_listening(self.port, "tinyproxy", self.log, self.process)
        return self

    def connects(self) -> list[str]:
        """The CONNECT lines of its log."""
        return [line for line in _tail_all(self.log).splitlines() if "CONNECT" in line]

    def stop(self) -> None:
        _stop(self.process)


def _tail_all(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


class SilentListener:
    """A port that accepts TCP (the kernel's backlog) and never says a word: a TLS handshake
    that never completes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()
