"""Benchmark: the fake server under 500 sessions doing connect → session_info → livekit_token,
opened at a steady 100/s and 250/s and then held. Prints JSON.

The server runs as ``python -m fake_server --no-bot-warmup`` in its own process (the load generator
must not share it); tokens are real, for a livekit-server started here. Loopback only. The
generator speaks Socket.IO's wire packets itself (see WireSession) so that its own CPU cost
stays small beside the server's on 2 cores.
Run: scripts/isolated_run.sh .venv/bin/python bench/fake_server_load.py [--sessions 500]
Targets (design.md): p99 ≤ 75 ms at 100/s, ≤ 150 ms at 250/s; ≤ 200 KB per held session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from pytest_estuary.livekit_server import LiveKitServer

SETTLE = 1.0  # seconds to let the server's memory settle before reading it
NAMESPACE = "/sdk"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WireSession:
    """One Socket.IO v4 session spoken directly on a WebSocket: just the packets this bench needs.

    python-socketio's AsyncClient costs the generator far more CPU per session than the server
    spends on it; on 2 shared cores that cost lands in the measured tail. The packets are the
    Engine.IO 4 / Socket.IO 5 text encoding: ``0`` open, ``2``/``3`` ping/pong, ``40/sdk,{auth}``
    connect, ``42/sdk,[name, payload]`` event.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, auth: dict[str, Any]) -> WireSession:
        ws = await http.ws_connect(url.rstrip("/") + "/socket.io/?EIO=4&transport=websocket", autoping=True)
        session = cls(ws)
        opened = await session.receive()
        if not opened.startswith("0{"):
            raise RuntimeError(f"expected an Engine.IO open packet, got {opened[:80]!r}")
        await ws.send_str(f"40{NAMESPACE}," + json.dumps(auth))
        return session

    async def receive(self) -> str:
        """The next packet that is not a ping (pings are answered here)."""
        while True:
            message = await self.ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the WebSocket ended: {message.type.name} {message.extra or ''}")
            if message.data == "2":
                await self.ws.send_str("3")
                continue
            return str(message.data)

    async def wait_event(self, name: str) -> Any:
        prefix = f'42{NAMESPACE},["{name}"'
        while True:
            packet = await self.receive()
            if packet.startswith(prefix):
                return json.loads(packet[len(NAMESPACE) + 3 :])[1]

    async def emit(self, name: str) -> None:
        await self.ws.send_str(f"42{NAMESPACE}," + json.dumps([name, None]))

    def hold(self) -> None:
        """Keep answering pings while the session is held."""
        self.keepalive = asyncio.ensure_future(self._answer_pings())

    async def _answer_pings(self) -> None:
        with contextlib.suppress(RuntimeError, ConnectionError):
            while True:
                await self.receive()

    async def close(self) -> None:
        if self.keepalive is not None:
            self.keepalive.cancel()
        await self.ws.close()


async def one_session(
    http: aiohttp.ClientSession, url: str, api_key: str, index: int, held: list[WireSession]
) -> float:
    start = time.perf_counter()
    auth = {"api_key": api_key, "character_id": "bench", "player_id": f"load-{index}"}
    session = await WireSession.open(http, url, auth)
    held.append(session)
    await asyncio.wait_for(session.wait_event("session_info"), 15)
    await session.emit("livekit_token")
    await asyncio.wait_for(session.wait_event("livekit_token"), 15)
    took = time.perf_counter() - start
    session.hold()
    return took


async def run_rate(url: str, api_key: str, server_pid: int, sessions: int, rate: float) -> dict[str, Any]:
    baseline, cpu_before = rss_bytes(server_pid), cpu_seconds(server_pid)
    held: list[WireSession] = []
    tasks = []
    connector = aiohttp.TCPConnector(limit=0)  # no pool limit: every session is its own connection
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        for index in range(sessions):
            # A steady schedule: session i starts at i / rate, however long the others take.
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one_session(http, url, api_key, index, held)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(server_pid) - cpu_before
        latencies = sorted(r for r in results if isinstance(r, float))
        errors = [repr(r) for r in results if not isinstance(r, float)]
        await asyncio.sleep(SETTLE)
        loaded = rss_bytes(server_pid)
        for session in held:
            await session.close()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {
        "rate_per_s": rate,
        "sessions": sessions,
        "completed": len(latencies),
        "errors": errors[:5],
        "handshake_p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "handshake_p99_ms": round(quantiles[98] * 1000, 2),
        "handshake_max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "tokens_per_s": round(len(latencies) / elapsed, 1),
        "server_cpu_ms_per_session": round(server_cpu * 1000 / max(1, len(latencies)), 2),
        "server_rss_mb_before": round(baseline / 2**20, 1),
        "server_rss_mb_held": round(loaded / 2**20, 1),
        "memory_per_held_session_kb": round((loaded - baseline) / max(1, len(held)) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--rates", default="100,250")
    parser.add_argument("--server-path", help="a directory holding another fake_server package to run (before/after)")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with LiveKitServer() as lk:
        # The target is the Socket.IO handshake and token minting; with warm-up each token
        # would also start a WebRTC bot (that cost is bench/voice_handshake.py's subject).
        command = [sys.executable, "-m", "fake_server", "--no-bot-warmup"]
        env = dict(os.environ, LIVEKIT_URL=lk.url, LIVEKIT_API_KEY=lk.api_key, LIVEKIT_API_SECRET=lk.api_secret)
        # python -m looks in the working directory first: run there to measure another copy
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=args.server_path)
        try:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            runs = [
                asyncio.run(run_rate(info["url"], info["api_key"], server.pid, args.sessions, float(rate)))
                for rate in args.rates.split(",")
            ]
        finally:
            server.terminate()
            server.wait(15)
    targets = {"100": 75.0, "250": 150.0}
    for run in runs:
        target = targets.get(str(int(run["rate_per_s"])))
        run["p99_target_ms"] = target
        run["p99_met"] = target is not None and run["handshake_p99_ms"] <= target
        run["memory_target_kb"] = 200
        run["memory_met"] = run["memory_per_held_session_kb"] <= 200
    json.dump(
        {"fake_server_load": runs, "bot_warmup": False, "generator": "raw Socket.IO v4 on aiohttp"},
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
