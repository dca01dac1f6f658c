"""The gate: a requirement broken under load is a failure named by its ID and a non-zero exit; a
percentile over its --max bound fails too (the bound logic is checked on Locust's CSV format)."""

from __future__ import annotations

from pathlib import Path

import pytest
from load_runs import estuary_load
from standalone_fakes import StandaloneFakes

from pytest_estuary.load.gate import evaluate, parse_bound, read_failures, read_stats

STATS_HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
                "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
                "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")  # fmt: skip


def test_no_livekit_ready_under_load_fails_the_gate_with_lk_5(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake({"no_livekit_ready": True})
    run = estuary_load(server["url"], server["api_key"], tmp_path,
                       "-u", "2", "-r", "2", "-t", "6s", "--transport-mix", "livekit=1")  # fmt: skip
    assert run.status == 1, f"{run.status}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    failures = run.failures()
    assert failures and all(f["Error"].startswith("LK-5: ") and f["Name"] == "livekit_ready" for f in failures)
    assert "5 s (ready_timeout)" in failures[0]["Error"]
    gate = run.gate()
    assert gate["ok"] is False and set(gate["violations"]) == {"LK-5"}
    summary = (tmp_path / "summary.md").read_text()
    assert "**Gate: FAILED**" in summary and "| LK-5 |" in summary


def _stats(tmp_path: Path, p99_ms: int) -> Path:
    path = tmp_path / "locust_stats.csv"
    row = f"estuary,livekit_ready,10,0,40,45,3,{p99_ms},0,1,0,40,40,40,40,40,40,40,{p99_ms},{p99_ms},{p99_ms},{p99_ms}"
    done = "estuary,disconnect,10,0,1,1,1,1,0,1,0,1,1,1,1,1,1,1,1,1,1,1"
    path.write_text(
        "\n".join(
            [
                STATS_HEADER,
                row,
                done,
                "",
            ]
        )
    )
    return path


def test_a_percentile_over_its_bound_fails_the_gate(tmp_path: Path) -> None:
    bound = parse_bound("p99:livekit_ready=5s")
    assert evaluate(read_stats(_stats(tmp_path, 4900)), [], [bound]).ok
    over = evaluate(read_stats(_stats(tmp_path, 5100)), [], [bound])
    assert not over.ok and over.exceeded == ["p99:livekit_ready=5s: measured 5.1 s over 10 requests"]
    assert not evaluate(read_stats(_stats(tmp_path, 10)), [], [parse_bound("p50:bot_track=100ms")]).ok  # no sample


def test_failures_are_counted_by_requirement_id(tmp_path: Path) -> None:
    path = tmp_path / "locust_failures.csv"
    rows = [
        'estuary,livekit_ready,"LK-5: timed out",3',
        'estuary,session,"ERROR: the session engine exited",1',
        'estuary,stt_final,"LK-7: crossed",2',
    ]
    path.write_text("\n".join(["Method,Name,Error,Occurrences", *rows, ""]))
    gate = evaluate(read_stats(_stats(tmp_path, 10)), read_failures(path), [])
    assert not gate.ok and gate.violations == {"LK-5": 3, "ERROR": 1, "LK-7": 2}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("p99:livekit_ready=5", "expected PERCENTILE:PHASE=NUMBER(s|ms)"),
        ("p97:livekit_ready=5s", "percentile 'p97' is not one Locust reports"),
        ("p99:ready=5s", "unknown phase 'ready'"),
        ("p99:livekit_ready=0s", "must be above 0"),
    ],
)
def test_bad_bounds_are_refused_naming_the_part(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"--max") as error:
        parse_bound(spec)
    assert says in str(error.value)
