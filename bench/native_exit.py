"""Benchmark: how often a process that ran livekit's native runtime aborts at exit, without and
with pytest_estuary.native_exit armed. Prints JSON.

Run: .venv/bin/python bench/native_exit.py [--runs 30]
Each run is a fresh interpreter whose threads keep livekit's audio capture busy, so its native
threads are calling back into Python when the interpreter exits: the condition in which a whole
suite once passed and its process still exited -6 ("panic in a function that cannot unwind").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUSY_AT_EXIT = """
import asyncio, sys, threading, time
sys.path.insert(0, {root!r})
if {armed}:
    from pytest_estuary import native_exit
    native_exit.arm(lambda: 0)
from livekit import rtc

def capture_forever():
    async def run():
        source = rtc.AudioSource(48000, 1, queue_size_ms=100_000)
        frame = rtc.AudioFrame.create(48000, 1, 480)
        while True:
            for _ in range(200):
                asyncio.ensure_future(source.capture_frame(frame))
            await asyncio.sleep(0)
    asyncio.run(run())

for _ in range(2):
    threading.Thread(target=capture_forever, daemon=True).start()
time.sleep(0.3)
"""


def aborted(armed: bool, runs: int) -> tuple[int, float]:
    """Runs that ended by a signal or printed livekit's non-unwinding panic; seconds per run."""
    script = BUSY_AT_EXIT.format(root=str(ROOT), armed=armed)
    count = 0
    started = time.monotonic()
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or "cannot unwind" in done.stderr:
            count += 1
    return count, (time.monotonic() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    plain, plain_seconds = aborted(False, runs)
    armed, armed_seconds = aborted(True, runs)
    print(
        json.dumps(
            {
                "runs_each": runs,
                "aborted_without_native_exit": plain,
                "aborted_with_native_exit": armed,
                "seconds_per_run": {"without": round(plain_seconds, 2), "with": round(armed_seconds, 2)},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
