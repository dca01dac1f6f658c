"""Issue 10's proof: verdicts depend neither on order nor on selection. The embedded suite runs
ordered (with --estuary-strict: our fake and client pass every case, SHOULDs included), then in
two shuffled orders, then each case alone; every case gets the same verdict each time."""

from __future__ import annotations

import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live_runs import SuiteRun, run_suite

from pytest_estuary.livekit_server import LiveKitCredentials

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
SEEDS = (20261128, 7)
PARALLEL_RUNS = 3  # each alone run is mostly start-up


def _collect() -> list[str]:
    """The suite's node IDs, as absolute paths that can be passed back in any order."""
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, check=True, cwd=CONFORMANCE.parent,
    )  # fmt: skip
    ids = [line for line in listing.stdout.splitlines() if line.startswith("conformance/") and "::" in line]
    assert ids, listing.stdout[-2000:]
    return [str(CONFORMANCE.parent / node) for node in ids]


@pytest.fixture(scope="module")
def nodes() -> list[str]:
    return _collect()


@pytest.fixture(scope="module")
def shared_livekit(livekit_server: LiveKitCredentials) -> dict[str, str]:
    """Every run uses this session's LiveKit server instead of starting its own."""
    return {
        "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
    }


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory, shared_livekit: dict[str, str]) -> SuiteRun:
    run = run_suite(tmp_path_factory.mktemp("ordered"), "--estuary-strict", env=shared_livekit)
    assert run.report is not None, run.output[-3000:]
    return run


def _differences(reference: SuiteRun, other: SuiteRun) -> dict[str, tuple[str, str | None]]:
    mine, theirs = reference.verdicts(), other.verdicts()
    return {name: (verdict, theirs.get(name)) for name, verdict in mine.items() if theirs.get(name) != verdict}


def test_ordered_embedded_run_passes_every_case_strictly(ordered: SuiteRun) -> None:
    not_passed = {n: v for n, v in ordered.verdicts().items() if v != "PASS"}
    assert not not_passed, ordered.output[-4000:]
    assert ordered.code == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffled_order_gives_the_same_verdicts(
    ordered: SuiteRun, nodes: list[str], seed: int, tmp_path: Path, shared_livekit: dict[str, str]
) -> None:
    shuffled = nodes[:]
    random.Random(seed).shuffle(shuffled)
    print(f"shuffle seed {seed}; first cases: {[n.rsplit('::', 1)[-1] for n in shuffled[:5]]}")
    run = run_suite(tmp_path, "--estuary-strict", nodes=shuffled, env=shared_livekit)
    assert run.report is not None, run.output[-3000:]
    assert len(run.verdicts()) == len(ordered.verdicts())
    assert not _differences(ordered, run), f"seed {seed}: {_differences(ordered, run)}\n{run.output[-3000:]}"


def test_each_case_alone_gives_the_same_verdict(
    ordered: SuiteRun, nodes: list[str], tmp_path: Path, shared_livekit: dict[str, str]
) -> None:
    functions = sorted({node.split("[", 1)[0] for node in nodes})

    def alone(index_and_function: tuple[int, str]) -> SuiteRun:
        index, function = index_and_function
        where = tmp_path / f"alone{index}"
        where.mkdir()
        return run_suite(where, "--estuary-strict", nodes=[function], env=shared_livekit, timeout=300)

    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        runs = list(pool.map(alone, enumerate(functions)))
    reference = ordered.verdicts()
    different = {
        case["nodeid"].rsplit("::", 1)[-1]: (
            reference.get(case["nodeid"].rsplit("::", 1)[-1]),
            case["verdict"],
            case["reason"],
        )
        for run in runs
        for case in run.cases()
        if reference.get(case["nodeid"].rsplit("::", 1)[-1]) != case["verdict"]
    }
    assert sum(len(run.verdicts()) for run in runs) == len(reference)
    assert not different, f"(ordered, alone, reason) differ: {different}"
