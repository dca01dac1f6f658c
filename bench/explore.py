"""Benchmark: the explorer's pace and how soon it finds a sequence-only defect. Prints JSON.

Run inside the namespace, with PYTHONNODEBUGRANGES=1 as ``make`` sets it (hypothesis parses source
while livekit's threads print tracebacks: the CPython race of the README's Known issues ended one run):
PYTHONNODEBUGRANGES=1 scripts/isolated_run.sh .venv/bin/python bench/explore.py [--seconds 30]
- steps per second (a step: one client action, the answer it awaits, and every socket's probe),
  embedded (fake in this process, rooms listed through RoomService) and live (a standalone fake);
- with ``--reach N``: per requirement, the seconds until a step first gave it a chance to break
  (N seeds against the good embedded fake, ``--seconds`` each; the EXPLORE case skips one never reached);
- per sequence-only misbehaviour of the fake, the seconds from the start of exploring to the first
  sequence that broke it (before shrinking), median of 5 seeds, with what was blamed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from conformance.explore.bounds import Bounds
from conformance.explore.requirements import EXPLORED
from conformance.explore.runner import Exploration, explore
from conformance.explore.world import LoopThread, World
from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer
from pytest_estuary.targets import EstuaryTarget

# Only now: on the path first, the tests' own fake_server directory would hide the package.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

from standalone_fakes import StandaloneFakes

SEQUENCE_SETTINGS = (
    "leave_mid_handshake_keeps_room",
    "join_twice_two_bots",
    "stale_interrupt_cuts_next_reply",
    "playback_complete_after_interrupt_kills",
    "second_socket_steals_replies",
)
SEEDS = (1, 2, 3, 4, 5)
BUDGET = 60.0  # --estuary-explore-time's default
TIMEOUT = 3.0  # --estuary-timeout as the proofs run it


def _target(url: str, api_key: str, mode: str) -> EstuaryTarget:
    return EstuaryTarget(url, api_key, "bench-character", "bench-player", mode, TIMEOUT)  # type: ignore[arg-type]


def _explore(
    target: EstuaryTarget, livekit: LiveKitCredentials | None, *, budget: float, seed: int, first_only: bool
) -> Exploration:
    """Pace runs explore as a run does; first-finding runs stop at the finding, unshrunk."""
    loop = LoopThread()
    world = World(target, Bounds.for_timeout(TIMEOUT), loop, livekit)
    try:
        return explore(
            world, budget=budget, examples=None, seed=seed, database=False, first_only=first_only, shrink=not first_only
        )
    finally:
        world.reset()
        loop.close()


def _pace(result: Exploration) -> dict[str, Any]:
    return {
        "seconds": round(result.seconds, 1),
        "sequences": result.sequences,
        "steps": result.steps,
        "steps_per_second": round(result.steps_per_second, 2),
        "findings": sorted(result.findings),
    }


def _reach(target: EstuaryTarget, livekit: LiveKitCredentials, *, seconds: float, seeds: int) -> dict[str, Any]:
    """Per requirement: seconds to first exercise it in each seed's run (None: not in ``seconds``)."""
    runs = [_explore(target, livekit, budget=seconds, seed=seed, first_only=False) for seed in range(100, 100 + seeds)]
    reach: dict[str, Any] = {"sequences": [run.sequences for run in runs]}
    for requirement in sorted(EXPLORED):
        times = [run.first_reached_after.get(requirement) for run in runs]
        finite = sorted(t for t in times if t is not None)
        reach[requirement] = {
            "reached": f"{len(finite)}/{len(times)}",
            "median_seconds": round(statistics.median(finite), 2) if finite else None,
            "max_seconds": round(finite[-1], 2) if finite else None,
        }
    return reach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="exploring time of each pace measurement")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds per misbehaviour (default 5)")
    parser.add_argument(
        "--only", action="append", choices=SEQUENCE_SETTINGS, help="first findings of these settings only (repeatable)"
    )
    parser.add_argument("--no-pace", action="store_true", help="skip the steps-per-second measurements")
    parser.add_argument("--reach", type=int, default=0, help="seeds of the time-to-reach measurement (default none)")
    parser.add_argument("--no-findings", action="store_true", help="skip the first-finding measurements")
    args = parser.parse_args()
    # hypothesis reports on stdout (e.g. the steps before the budget's stop): the JSON alone goes there
    with contextlib.redirect_stdout(sys.stderr):
        results = _measure(args)
    print(json.dumps(results, indent=2))


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    livekit = LiveKitServer()
    creds = livekit.start()
    fake = FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret)).start()
    fakes = StandaloneFakes(creds)
    results: dict[str, Any] = {}
    try:
        embedded = _target(fake.url, fake.api_key, "fake")
        if not args.no_pace:
            results["embedded"] = _pace(_explore(embedded, creds, budget=args.seconds, seed=7, first_only=False))
            standalone = fakes.start()
            live = _target(standalone["url"], standalone["api_key"], "live")
            results["live"] = _pace(_explore(live, None, budget=args.seconds, seed=7, first_only=False))
        if args.reach:
            results["reach"] = _reach(embedded, creds, seconds=args.seconds, seeds=args.reach)
        first: dict[str, Any] = {}
        for setting in [] if args.no_findings else args.only or SEQUENCE_SETTINGS:
            times, blamed = [], []
            for seed in SEEDS[: args.seeds]:
                fake.reset()
                settings: dict[str, Any] = {setting: True}
                fake.misbehave(**settings)
                found = _explore(embedded, creds, budget=BUDGET, seed=seed, first_only=True)
                times.append(min(found.first_finding_after.values(), default=float("inf")))
                blamed.append(sorted(found.findings))
            fake.reset()
            finite = [t for t in times if t != float("inf")]
            first[setting] = {
                "median_seconds": round(statistics.median(times), 2) if len(finite) > len(times) // 2 else None,
                "seconds": [round(t, 2) if t != float("inf") else None for t in times],
                "blamed": blamed,
            }
        results["first_finding"] = first
    finally:
        fakes.stop_all()
        fake.stop()
        livekit.stop()
    return results


if __name__ == "__main__":
    main()
