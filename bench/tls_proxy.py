"""Benchmark: what a TLS-terminating reverse proxy (nginx) costs, against the same fake plain. Prints JSON.

- connect → ``session_info`` (the Socket.IO handshake: TCP, TLS, WebSocket upgrade, Engine.IO
  open, namespace CONNECT, authentication) through nginx (https, a private CA passed as
  ``ca_file``) and plain, interleaved, p50/p95 over ≥ 20 each;
- ``start_voice()`` → ``livekit_ready`` the same way: through nginx LiveKit signalling is wss;
- with ``--suite``: the whole live suite's wall time (``estuary-conformance --estuary-live``)
  through nginx and plain, one run each.

Starts its own livekit-server, two fake servers (one handing out the wss LiveKit URL behind
nginx) and nginx, all on loopback. Run inside the network namespace:
    scripts/isolated_run.sh .venv/bin/python bench/tls_proxy.py [--runs 20] [--suite]
Target (design.md): the Socket.IO handshake through the TLS proxy within +15 ms p50 of plain.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.client import EstuaryClient
from pytest_estuary.livekit_server import LiveKitServer
from pytest_estuary.tls import ssl_context, trust_in_process

ROOT = Path(__file__).resolve().parents[1]


def _test_helpers() -> Any:
    """tests/tls_proxy.py (nginx and the certificates), loaded by path: this file has its name."""
    spec = importlib.util.spec_from_file_location("estuary_tls_proxy_helpers", ROOT / "tests" / "tls_proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


helpers = _test_helpers()

TARGET_MS = 15.0
SETTLE = 0.5  # the fake puts its next standby bot in place after each voice start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 0.5) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "n": len(values),
    }


class Side:
    """One way to reach a fake: its URL and the client options that go with it."""

    def __init__(self, name: str, url: str, api_key: str, **options: Any) -> None:
        self.name, self.url, self.api_key, self.options = name, url, api_key, options
        self.handshakes: list[float] = []
        self.voice: list[float] = []

    def client(self, index: int) -> EstuaryClient:
        return EstuaryClient(self.url, self.api_key, "bench", f"{self.name}-{index}", reconnect=False, **self.options)


async def one_round(side: Side, index: int) -> None:
    client = side.client(index)
    try:
        started = time.monotonic()
        await client.connect()  # returns on session_info
        side.handshakes.append(time.monotonic() - started)
        started = time.monotonic()
        await client.start_voice()
        ready = next(e.t for e in client.history if e.event == "livekit_ready" and e.t >= started)
        side.voice.append(ready - started)
        await client.stop_voice()
    finally:
        await client.disconnect()
    await asyncio.sleep(SETTLE)


def suite_seconds(url: str, api_key: str, *extra: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", "from pytest_estuary.conformance_cli import main; raise SystemExit(main())",
             "-q", "--estuary-live", "--estuary-url", url, "--estuary-report", str(report), *extra],
            capture_output=True, text=True, env={"ESTUARY_API_KEY": api_key, **_env()}, cwd=tmp, timeout=900,
        )  # fmt: skip
        seconds = time.monotonic() - started
        gate = json.loads(report.read_text())["summary"]["gate"] if report.exists() else None
    return {"seconds": round(seconds, 1), "exit": done.returncode, "gate": gate}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}  # the suite trusts only its option


async def main(runs: int, suite: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="estuary-tls-bench-"))
    certificates = helpers.Certificates.make(workdir / "certs")
    trust_in_process(certificates.ca)  # the staging fake's bots and room service reach LiveKit through nginx
    manager = LiveKitServer()
    creds = manager.start()
    port = urlsplit(creds.url).port
    assert port is not None
    nginx = helpers.Nginx(workdir / "nginx", certificates, port)
    plain = FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret)).start()
    behind_livekit = LiveKitConfig(nginx.url("livekit", "wss"), creds.api_key, creds.api_secret)
    staging = FakeEstuaryServer(livekit=behind_livekit).start()
    try:
        nginx.start(staging.port)
        context: ssl.SSLContext = ssl_context(certificates.ca)
        sides = [
            Side("plain", plain.url, plain.api_key),
            Side("tls", nginx.url("tls"), staging.api_key, ca_file=certificates.ca, ssl_context=context),
        ]
        for side in sides:  # warm-up: first connections pay for imports and the standby bot
            await one_round(side, -1)
            side.handshakes.clear()
            side.voice.clear()
        for index in range(runs):
            for side in sides if index % 2 == 0 else reversed(sides):
                await one_round(side, index)
        by_name = {side.name: side for side in sides}
        handshake = {name: summary(side.handshakes) for name, side in by_name.items()}
        voice = {name: summary(side.voice) for name, side in by_name.items()}
        overhead = round(handshake["tls"]["p50_ms"] - handshake["plain"]["p50_ms"], 1)
        result: dict[str, Any] = {
            "connect_to_session_info": handshake,
            "socketio_handshake_overhead_p50_ms": overhead,
            "target_overhead_p50_ms": TARGET_MS,
            "meets_target": overhead <= TARGET_MS,
            "start_voice_to_livekit_ready": voice,
            "start_voice_overhead_p50_ms": round(voice["tls"]["p50_ms"] - voice["plain"]["p50_ms"], 1),
        }
        if suite:
            result["live_suite_wall_s"] = {
                "plain": suite_seconds(plain.url, plain.api_key),
                "tls": suite_seconds(nginx.url("tls"), staging.api_key, "--estuary-ca-file", str(certificates.ca)),
            }
        result["notes"] = (
            "tls: nginx terminates TLS (ECDSA P-256 certificate from a private CA) in front of the fake's "
            "Socket.IO and of livekit-server's signalling (wss); media is UDP to livekit-server in both; "
            "the client's SSL context is built once; runs interleave plain and tls"
        )
        return result
    finally:
        nginx.stop()
        staging.stop()
        plain.stop()
        manager.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--suite", action="store_true", help="also time the whole live suite through nginx and plain")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(max(20, args.runs), args.suite)), indent=2))
