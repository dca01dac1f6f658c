"""Benchmark: estuary-browser-shim (this project's web client in headless Chromium). Prints JSON.

Run inside the namespace: scripts/isolated_run.sh .venv/bin/python bench/browser_shim.py [--no-suites]
Measures: shim start (spawn → hello → create answered: bundle from cache, Chromium launch, page
ready), an op round trip (``state``) p50/p95 beside the Python shim's, ``say`` of 5 s of audio,
Chromium's memory per client with LiveKit voice running, and the client cases run through Chromium
vs through the Python shim (target: ≤ 2 times the Python shim's wall time).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "proofs"))

from live_runs import CLIENT_CASES, livekit_env, run_suite
from standalone_fakes import StandaloneFakes

from pytest_estuary import audio
from pytest_estuary.clients.interface import ClientSettings
from pytest_estuary.clients.json_lines import JsonLinesClient
from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer

ROOT = Path(__file__).resolve().parents[1]
ADAPTER = ROOT / "examples" / "web-client" / "adapter.mjs"
BROWSER = [str(Path(sys.executable).parent / "estuary-browser-shim"), "--module", str(ADAPTER)]
PYTHON = [sys.executable, "-m", "pytest_estuary.clients.shim", "ours"]
STARTS = 5
ROUND_TRIPS = 50
TARGET_RATIO = 2.0


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
    }


def _tree_memory(pid: int) -> dict[str, float]:
    """RSS summed over the shim's Chromium processes (shared pages counted in each) and USS (each
    process's own pages: what one more client really costs)."""
    rss = uss = 0
    count = 0
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "chrom" not in " ".join(process.cmdline()):
                continue
            info = process.memory_full_info()
            rss, uss, count = rss + info.rss, uss + info.uss, count + 1
        except psutil.NoSuchProcess:
            pass
    return {"processes": count, "rss_mb": round(rss / 2**20, 1), "uss_mb": round(uss / 2**20, 1)}


async def _client_figures(info: dict[str, Any]) -> dict[str, Any]:
    def settings(**overrides: Any) -> ClientSettings:
        base = {"server_url": info["url"], "api_key": info["api_key"], "character_id": "bench"}
        return ClientSettings(player_id=f"bench-{uuid.uuid4().hex[:6]}", **{**base, **overrides})

    starts = []
    for _ in range(STARTS):
        began = time.monotonic()
        client = await JsonLinesClient.start(BROWSER, settings())
        starts.append(time.monotonic() - began)
        await client.aclose()
    trips: dict[str, list[float]] = {}
    for name, command in (("browser", BROWSER), ("python", PYTHON)):
        client = await JsonLinesClient.start(command, settings())
        trips[name] = []
        for _ in range(ROUND_TRIPS):
            began = time.monotonic()
            await client.state()
            trips[name].append(time.monotonic() - began)
        await client.aclose()

    client = await JsonLinesClient.start(BROWSER, settings(voice_transport="livekit"))
    try:
        await client.connect()
        await client.start_voice()
        speech = audio.utterance(duration=4.4, lead=0.3, tail=0.3)  # 5 s at 48 kHz
        began = time.monotonic()
        await client.say(speech.tobytes(), 48000)
        say_seconds = time.monotonic() - began
        await asyncio.sleep(2.0)  # media flowing both ways
        memory = _tree_memory(client.pid)
        await client.stop_voice()
    finally:
        await client.aclose()
    return {
        "shim_start": {**_ms(starts), "runs": len(starts)},
        "op_round_trip_state": {name: {**_ms(values), "runs": len(values)} for name, values in trips.items()},
        "say_5s_audio_ms": round(say_seconds * 1000, 1),
        "say_audio_seconds": round(len(speech) / 48000, 2),
        "chromium_memory_one_client_livekit_voice": memory,
    }


def _suites(creds: LiveKitCredentials) -> dict[str, Any]:
    """The client cases once through each shim, one after the other (the same machine load)."""
    seconds: dict[str, float] = {}
    passed: dict[str, int] = {}
    not_passed: dict[str, dict[str, str]] = {}
    for name, command in (("python_shim", PYTHON), ("browser_shim", BROWSER)):
        with tempfile.TemporaryDirectory() as tmp:
            option = "cmd:" + " ".join(command)
            run = run_suite(Path(tmp), "--estuary-client", option, nodes=CLIENT_CASES, env=livekit_env(creds))
        seconds[name] = round(run.seconds, 1)
        passed[name] = sum(1 for case in run.cases() if case["verdict"] == "PASS")
        not_passed[name] = {
            case["nodeid"].rsplit("::", 1)[-1]: f"{case['verdict']}: {(case['reason'] or '')[:300]}"
            for case in run.cases()
            if case["verdict"] != "PASS"
        }
    ratio = seconds["browser_shim"] / seconds["python_shim"]
    return {
        "seconds": seconds,
        "passed": passed,
        "not_passed": not_passed,
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def main() -> None:
    livekit = LiveKitServer()
    creds = livekit.start()
    fakes = StandaloneFakes(creds)
    try:
        info = fakes.start()
        results = asyncio.run(_client_figures(info))
        fakes.stop_all()
        if "--no-suites" not in sys.argv:
            results["client_cases_run"] = _suites(creds)
    finally:
        fakes.stop_all()
        livekit.stop()
    load = os.getloadavg()
    print(json.dumps({"bench": "browser_shim", "cpus": os.cpu_count(), "load_average": load, **results}, indent=2))


if __name__ == "__main__":
    main()
