"""Benchmark: the fake server under 500 sessions doing connect → session_info → livekit_token,
opened at a steady 100/s and 250/s and then held. Prints JSON.

The server runs as ``python -m fake_server`` in its own process (the load generator must not share
it); tokens are real, for a livekit-server started here. Loopback only.
Run: scripts/isolated_run.sh .venv/bin/python bench/fake_server_load.py [--sessions 500]
Targets (design.md): p99 ≤ 75 ms at 100/s, ≤ 150 ms at 250/s; ≤ 200 KB per held session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import socketio

from pytest_estuary.livekit_server import LiveKitServer

SETTLE = 1.0  # seconds to let the server's memory settle before reading it


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def one_session(url: str, api_key: str, index: int, held: list[socketio.AsyncClient]) -> float:
    client = socketio.AsyncClient(reconnection=False)
    got_info, got_token = asyncio.Event(), asyncio.Event()
    client.on("session_info", lambda *_: got_info.set(), namespace="/sdk")
    client.on("livekit_token", lambda *_: got_token.set(), namespace="/sdk")
    start = time.perf_counter()
    auth = {"api_key": api_key, "character_id": "bench", "player_id": f"load-{index}"}
    await client.connect(url, namespaces=["/sdk"], transports=["websocket"], auth=auth, wait_timeout=10)
    await asyncio.wait_for(got_info.wait(), 15)
    await client.emit("livekit_token", None, namespace="/sdk")
    await asyncio.wait_for(got_token.wait(), 15)
    held.append(client)
    return time.perf_counter() - start


async def run_rate(url: str, api_key: str, server_pid: int, sessions: int, rate: float) -> dict[str, Any]:
    baseline = rss_bytes(server_pid)
    held: list[socketio.AsyncClient] = []
    tasks = []
    start = time.perf_counter()
    for index in range(sessions):
        # A steady schedule: session i starts at i / rate, however long the others take.
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one_session(url, api_key, index, held)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    latencies = sorted(r for r in results if isinstance(r, float))
    errors = [repr(r) for r in results if not isinstance(r, float)]
    await asyncio.sleep(SETTLE)
    loaded = rss_bytes(server_pid)
    for client in held:
        await client.disconnect()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {
        "rate_per_s": rate,
        "sessions": sessions,
        "completed": len(latencies),
        "errors": errors[:5],
        "handshake_p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "handshake_p99_ms": round(quantiles[98] * 1000, 2),
        "tokens_per_s": round(len(latencies) / elapsed, 1),
        "server_rss_mb_before": round(baseline / 2**20, 1),
        "server_rss_mb_held": round(loaded / 2**20, 1),
        "memory_per_held_session_kb": round((loaded - baseline) / max(1, len(held)) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--rates", default="100,250")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with LiveKitServer() as lk:
        command = [
            sys.executable, "-m", "fake_server", "--livekit-url", lk.url,
            "--livekit-api-key", lk.api_key, "--livekit-api-secret", lk.api_secret,
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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
    json.dump({"fake_server_load": runs}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
