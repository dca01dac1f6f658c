"""Issue 10's proof: verdicts depend neither on order nor on selection. In the written order, the
embedded suite passes every case with --estuary-strict (our fake and client, SHOULDs included):
``make test`` runs exactly that, in this same session. Here it runs in a shuffled order, then
each case alone, and every case must PASS each time: the same verdict as in order."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live_runs import SuiteRun, collect, livekit_env, run_suite

from pytest_estuary.livekit_server import LiveKitCredentials

# One embedded shuffle here; test_standalone_fake_repeatable.py runs the live suite in two more.
SEEDS = (20261128,)
# Each alone run is mostly start-up, but with three at once a fresh-clone run once saw LK-6's bot
# arrive later than livekit_ready + 1 s in one of them (it passes alone: 8 of 8 at 1.7 s each).
PARALLEL_RUNS = 2


@pytest.fixture(scope="module")
def nodes() -> list[str]:
    return collect()


@pytest.fixture(scope="module")
def shared_livekit(livekit_server: LiveKitCredentials) -> dict[str, str]:
    """Every run uses this session's LiveKit server instead of starting its own."""
    return livekit_env(livekit_server)


def _not_passing(run: SuiteRun) -> dict[str, tuple[str, str]]:
    return {
        case["nodeid"].rsplit("::", 1)[-1]: (case["verdict"], (case["reason"] or "")[:300])
        for case in run.cases()
        if case["verdict"] != "PASS"
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffled_order_gives_the_same_verdicts(
    nodes: list[str], seed: int, tmp_path: Path, shared_livekit: dict[str, str]
) -> None:
    shuffled = nodes[:]
    random.Random(seed).shuffle(shuffled)
    print(f"shuffle seed {seed}; first cases: {[n.rsplit('::', 1)[-1] for n in shuffled[:5]]}")
    run = run_suite(tmp_path, "--estuary-strict", nodes=shuffled, env=shared_livekit)
    assert run.report is not None, run.output[-3000:]
    assert len(run.verdicts()) == len(nodes)
    assert not _not_passing(run), f"seed {seed}: {_not_passing(run)}\n{run.output[-3000:]}"
    assert run.code == 0


def test_each_case_alone_gives_the_same_verdict(
    nodes: list[str], tmp_path: Path, shared_livekit: dict[str, str]
) -> None:
    functions = sorted({node.split("[", 1)[0] for node in nodes})

    def alone(index_and_function: tuple[int, str]) -> SuiteRun:
        index, function = index_and_function
        where = tmp_path / f"alone{index}"
        where.mkdir()
        return run_suite(where, "--estuary-strict", nodes=[function], env=shared_livekit, timeout=300)

    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        runs = list(pool.map(alone, enumerate(functions)))
    assert sum(len(run.verdicts()) for run in runs) == len(nodes)
    different = {name: seen for run in runs for name, seen in _not_passing(run).items()}
    assert not different, f"(verdict, reason) of the cases that did not pass alone: {different}"
