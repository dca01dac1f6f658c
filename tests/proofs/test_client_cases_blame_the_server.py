"""Issue 10's proof for the client cases (SEL, ERR, LIFE): against an embedded fake broken in one
client-facing way, no client case FAILs (our client is not what is broken); a case that cannot
observe its own requirement is BLOCKED by the server requirement the setting breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from live_runs import CLIENT_CASES, SuiteRun, livekit_env, run_suite

from pytest_estuary.livekit_server import LiveKitCredentials

PARALLEL_RUNS = 3  # the runs mostly wait out timeouts

# One setting per way a server step can break (silent, refused, wrong), each step once: the
# other settings break the same steps the same ways (the live proof runs all of them).
# setting → (misbehaviour, the requirements a BLOCKED client case may name)
BROKEN: dict[str, tuple[dict[str, Any], set[str]]] = {
    "livekit_disabled": ({"livekit_disabled": True}, {"LK-1"}),
    "livekit_refused": ({"livekit_refused": "no voice here"}, {"LK-1"}),
    "token_wrong_secret": ({"token_wrong_secret": True}, {"LK-2"}),
    "no_livekit_ready": ({"no_livekit_ready": True}, {"LK-5"}),
    "ready_wrong_room": ({"ready_wrong_room": True}, {"LK-5"}),
    "bot_deaf": ({"bot_deaf": True}, {"LK-7", "WS-2"}),
    "auth_always_fails": ({"auth_always_fails": True}, {"CONN-3"}),
}


@pytest.fixture(scope="module")
def runs(livekit_server: LiveKitCredentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    env = livekit_env(livekit_server)

    places = {name: tmp_path_factory.mktemp(name) for name in BROKEN}  # here: the factory is not thread-safe

    def one(name: str) -> SuiteRun:
        args = ("--estuary-fake-misbehave", json.dumps(BROKEN[name][0]), "--estuary-timeout", "2")
        return run_suite(places[name], *args, nodes=CLIENT_CASES, env=env)

    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        yield dict(zip(BROKEN, pool.map(one, BROKEN), strict=True))


@pytest.mark.parametrize("setting", sorted(BROKEN))
def test_no_client_case_fails_for_a_broken_server(runs: dict[str, SuiteRun], setting: str) -> None:
    run = runs[setting]
    allowed = BROKEN[setting][1]
    problems = [
        f"{c['verdict']} {c['nodeid'].rsplit('::', 1)[-1]}: {(c['reason'] or '')[:300]}"
        for c in run.cases()
        if c["verdict"] in ("FAIL", "NON-STRICT", "ERROR")
        or (c["verdict"] == "BLOCKED" and c["blocked_by"] not in allowed)
    ]
    assert not problems, f"{setting} ({run.seconds:.0f} s):\n" + "\n".join(problems)
    assert any(c["verdict"] == "PASS" for c in run.cases()) or setting in ("auth_always_fails", "no_argument_events")
    assert run.code == 0, run.output[-3000:]
