"""Knee of the standalone fake + livekit-server under Locust load, with the CPU split (prints JSON).

Runs ``estuary-load --steps`` (the step shape) for: text users; LiveKit voice users with the bot's
warm-up and without (``--no-bot-warmup``); LiveKit voice users with Locust's master + 2 workers.
Per run: each phase's p50/p99 at each step, the knee (most sessions with every phase's p99 within
its requirement's bound and no violation), and at the knee step the CPU seconds of the fake (server
+ bot worker), livekit-server and the load generator (estuary-load, Locust, the session engines),
sampled with psutil. Run inside the namespace:

    bash scripts/isolated_run.sh .venv/bin/python bench/load_knee.py [--step-time 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from pytest_estuary.livekit_server import LiveKitServer, free_port

RUNS: dict[str, dict[str, Any]] = {
    "text": {"mix": "text=1", "steps": "10,25,50,100,200", "warmup": True, "workers": 0},
    "livekit": {"mix": "livekit=1", "steps": "2,4,6,8", "warmup": True, "workers": 0},
    "livekit_no_bot_warmup": {"mix": "livekit=1", "steps": "2,4,6,8", "warmup": False, "workers": 0},
    "livekit_2_workers": {"mix": "livekit=1", "steps": "2,4,6,8", "warmup": True, "workers": 2},
}


def _tree_cpu(process: psutil.Process) -> float:
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _start_fake(livekit: Any, warmup: bool) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = dict(os.environ, LIVEKIT_URL=livekit.url, LIVEKIT_API_KEY=livekit.api_key,
               LIVEKIT_API_SECRET=livekit.api_secret)  # fmt: skip
    command = [sys.executable, "-m", "fake_server", *([] if warmup else ["--no-bot-warmup"])]
    fake = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert fake.stdout is not None
    return fake, json.loads(fake.stdout.readline())


def one_run(
    name: str, spec: dict[str, Any], livekit_pid: int, livekit: Any, step_time: int, out: Path
) -> dict[str, Any]:
    fake, info = _start_fake(livekit, spec["warmup"])
    env = dict(os.environ, ESTUARY_API_KEY=info["api_key"])
    base = [sys.executable, "-m", "pytest_estuary.load.cli", "--estuary-url", info["url"]]
    workers: list[subprocess.Popen[bytes]] = []
    args = ["--steps", spec["steps"], "--step-time", f"{step_time}s", "--transport-mix", spec["mix"],
            "--out", str(out / name)]  # fmt: skip
    if spec["workers"]:
        port = str(free_port(host="127.0.0.1"))
        args += ["--master", "--expect-workers", str(spec["workers"]), "--master-bind-port", port]
        workers = [subprocess.Popen([*base, "--worker", "--master-port", port, "--out", str(out / f"{name}-w{i}")],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(spec["workers"])]  # fmt: skip
    generator = subprocess.Popen([*base, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = {"fake (server + bot worker)": psutil.Process(fake.pid), "livekit-server": psutil.Process(livekit_pid),
               "load generator": psutil.Process(generator.pid)}  # fmt: skip
    extra = [psutil.Process(w.pid) for w in workers]
    samples: list[tuple[float, dict[str, float]]] = []
    started = time.monotonic()
    while generator.poll() is None:
        cpu = {k: _tree_cpu(p) for k, p in watched.items()}
        cpu["load generator"] += sum(_tree_cpu(p) for p in extra)
        machine = psutil.cpu_times()
        cpu["machine (all processes)"] = machine.user + machine.system + machine.nice + machine.irq + machine.softirq
        samples.append((time.monotonic() - started, cpu))
        time.sleep(1.0)
    for worker in workers:
        worker.wait(120)
    fake.terminate()
    fake.wait(20)
    knee_file = out / name / "knee.json"
    result: dict[str, Any] = {"exit": generator.returncode}
    if not knee_file.exists():
        result["error"] = (generator.stderr.read().decode() if generator.stderr else "")[-1500:]
        return result
    knee = json.loads(knee_file.read_text())
    result.update(knee_sessions=knee["knee_sessions"], plot=knee["plot"], steps=[
        {"sessions": s["sessions"], "holds": s["holds"], "limited_by": s.get("limited_by"), "why_not": s["why_not"][:3],
         "phases": {p: [v["p50_ms"], v["p99_ms"]] for p, v in s["phases"].items()}} for s in knee["steps"]
    ])  # fmt: skip
    # CPU per step: the steps start once the preflight and Locust's start are over (~3 s in).
    offset = samples[0][0] + 3.0 if samples else 0.0
    steps = [int(s) for s in spec["steps"].split(",")]
    at = steps.index(knee["knee_sessions"]) if knee["knee_sessions"] in steps else 0
    window = [s for s in samples if offset + at * step_time <= s[0] <= offset + (at + 1) * step_time]
    if len(window) >= 2:
        seconds = window[-1][0] - window[0][0]
        cores = {k: round((window[-1][1][k] - window[0][1][k]) / seconds, 3) for k in window[0][1]}
        cores["other work on the machine"] = round(cores["machine (all processes)"] - sum(cores[k] for k in watched), 3)
        result["cpu_at_knee_cores"] = cores
        result["load_average_1m"] = psutil.getloadavg()[0]
        result["cpu_at_knee_step"] = steps[at]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step-time", type=int, default=20)
    parser.add_argument("--out", default="bench-load-knee")
    parser.add_argument("--only", action="append", choices=list(RUNS))
    options = parser.parse_args()
    out = Path(options.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cores": psutil.cpu_count(), "step_seconds": options.step_time, "runs": {}}
    manager = LiveKitServer()
    livekit = manager.start()
    try:
        assert manager.pid is not None
        for name in options.only or RUNS:
            report["runs"][name] = one_run(name, RUNS[name], manager.pid, livekit, options.step_time, out)
            print(f"{name}: knee {report['runs'][name].get('knee_sessions')}", file=sys.stderr)
    finally:
        manager.stop()
    (out / "load_knee.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written: {out}/load_knee.json and {out}/<run>/knee.png", file=sys.stderr)


if __name__ == "__main__":
    main()
