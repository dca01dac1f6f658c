"""Issue 12's proof: one standalone fake (``python -m fake_server``, no ``--transcripts``) passes the
whole live suite twice in a row, each time in another shuffled order. Nothing the first run left in
the server (sessions, rooms, its STT's count of utterances) changes a verdict of the second, and the
speech cases pass by recognising the suite's recordings, not by a script in the order they run."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest
from live_runs import SuiteRun, collect, run_suite, verdict_sets
from standalone_fakes import StandaloneFakes

from pytest_estuary.livekit_server import LiveKitCredentials

SPEECH = {"WS-2", "LK-7"}  # the cases whose transcript must come from the fake's recognition
SEED_VARIABLE = "ESTUARY_PROOF_SEED"  # set it to replay the orders a failed run printed


@pytest.fixture(scope="module")
def two_runs(livekit_server: LiveKitCredentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SuiteRun]]:
    """The live suite twice, in two shuffled orders, against one standalone fake started once."""
    nodes = collect()
    seed = int(os.environ.get(SEED_VARIABLE) or time.time_ns() % 10**9)
    orders = []
    for offset in range(2):
        order = nodes[:]
        random.Random(seed + offset).shuffle(order)
        orders.append(order)
    assert orders[0] != orders[1], f"seed {seed}: both shuffles gave one order"
    fakes = StandaloneFakes(livekit_server)
    try:
        server = fakes.start()  # no --transcripts: the speech cases pass by recognition or not at all
        env = {"ESTUARY_API_KEY": server["api_key"]}
        runs = []
        for offset, order in enumerate(orders):
            names = [node.rsplit("/", 1)[-1] for node in order]
            print(f"run {offset + 1}: seed {seed + offset} ({SEED_VARIABLE}={seed} replays both), order: {names}")
            tmp = tmp_path_factory.mktemp(f"run{offset + 1}")
            runs.append(run_suite(tmp, "--estuary-live", "--estuary-url", server["url"], nodes=order, env=env))
            print(f"run {offset + 1}: {runs[-1].seconds:.1f} s, exit {runs[-1].code}")
        yield runs
    finally:
        fakes.stop_all()


def _not_passed(run: SuiteRun) -> str:
    return "\n".join(
        f"{c['id']} {c['verdict']} {c['nodeid'].rsplit('::', 1)[-1]}: {(c['reason'] or '')[:300]}"
        for c in run.cases()
        if c["verdict"] != "PASS"
    )


@pytest.mark.parametrize("index", [0, 1], ids=["first", "second"])
def test_live_suite_passes_against_one_standalone_fake(two_runs: list[SuiteRun], index: int) -> None:
    run = two_runs[index]
    assert run.report is not None, f"no report; output:\n{run.output[-3000:]}"
    found = verdict_sets(run)
    explanation = f"run {index + 1} ({run.seconds:.0f} s):\n{_not_passed(run)}\n{run.output[-2000:]}"
    assert run.report["summary"]["gate"] == "pass", explanation
    assert run.code == 0, explanation
    for verdict in ("FAIL", "NON-STRICT", "ERROR", "BLOCKED"):
        assert not found.get(verdict), explanation
    skipped = [c for c in run.cases() if c["verdict"] == "SKIPPED"]
    assert all("not available with --estuary-live" in (c["reason"] or "") for c in skipped), explanation
    speech = [c for c in run.cases() if c["id"] in SPEECH]
    assert {c["id"] for c in speech} == SPEECH, explanation
    assert all(c["verdict"] == "PASS" for c in speech), explanation


def test_both_runs_give_the_same_verdicts(two_runs: list[SuiteRun]) -> None:
    first, second = (run.verdicts() for run in two_runs)
    assert set(first) == set(second)
    assert {name: (v, second[name]) for name, v in first.items() if second[name] != v} == {}
