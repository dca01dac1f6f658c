"""Benchmark: a 1,000-case HTML report opened in headless Chromium. Prints JSON.

Run inside the namespace (Chromium then has no network at all, as in the tests):
scripts/isolated_run.sh .venv/bin/python bench/report_html.py [--cases N] [--runs N]
Target (issue #22): the page opens (the load event, the filters' script done) in under 2 s.

The report is built from the model (``ConformanceReport``) as a run would fill it: every case
has a 30-event handshake timeline and timings, one in ten fails with a stalled ready phase. The
page is opened offline, from a file, as an artifact download would be, in Debian's Chromium.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from pytest_estuary.report import CaseResult, ConformanceReport
from pytest_estuary.report.html import report_html

TARGET_SECONDS = 2.0
SECTIONS = ("CONN", "WIRE", "TEXT", "LK", "WS", "SEL", "ERR", "LIFE")
CHROMIUM = "/usr/bin/chromium"


def _timeline(failed: bool) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"t": 0.004, "dir": "received", "peer": "peer1", "event": "session_info", "payload": {"session_id": "s"}},
        {"t": 0.010, "dir": "sent", "peer": "peer1", "event": "livekit_token", "payload": None},
        {"t": 0.030, "dir": "received", "peer": "peer1", "event": "livekit_token", "payload": {"token": "eyJh…"}},
        {"t": 0.120, "dir": "received", "peer": "livekit1", "event": "connection_state_changed", "payload": {}},
        {"t": 0.130, "dir": "sent", "peer": "peer1", "event": "livekit_join", "payload": {"room": "r"}},
    ]
    if not failed:
        entries.append({"t": 0.140, "dir": "received", "peer": "peer1", "event": "livekit_ready", "payload": {}})
    for n in range(30 - len(entries)):
        entries.append(
            {"t": 0.2 + n * 0.05, "dir": "received", "peer": "peer1", "event": "bot_response", "payload": {"n": n}}
        )
    return entries


def build(cases: int) -> dict[str, Any]:
    report = ConformanceReport(mode="fake", target="embedded fake server", livekit_source="bench", strict=False)
    for index in range(cases):
        failed = index % 10 == 0
        section = SECTIONS[index % len(SECTIONS)]
        case = CaseResult(
            id=f"{section}-{index}",
            level="MUST",
            requirement=f"Requirement text of case {index}: livekit_ready comes within 5 s of livekit_join.",
            nodeid=f"conformance/test_bench.py::test_case_{index}",
            verdict="FAIL" if failed else "PASS",
            duration=0.2 + (index % 7) * 0.1,
            reason="Expected: livekit_ready\nActual:   nothing within 5 s" if failed else None,
            timings={"token_round_trip": 0.02, "join_to_ready": 0.01 + (index % 5) * 0.002},
            timeline=_timeline(failed),
        )
        report.cases[case.nodeid] = case
    report.finished_at = time.time()
    return report.to_json("bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    page_text = report_html(build(args.cases))
    render = time.perf_counter() - started
    opened: list[float] = []
    filter_click: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        path = Path(tmp) / "report.html"
        path.write_text(page_text, encoding="utf-8")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for _ in range(args.runs):
                context = browser.new_context(offline=True)
                page = context.new_page()
                page.goto(path.as_uri(), wait_until="load")
                # navigation start → load event end: parsing, layout, the filter script's first pass
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return [n.loadEventEnd, n.domContentLoadedEventEnd]; }"
                )
                opened.append(timing[0] / 1000)
                click = time.perf_counter()
                page.click(".filters button[data-kind=verdict][data-value=PASS]")
                page.wait_for_function("document.getElementById('shown').textContent.startsWith('100 of')")
                filter_click.append(time.perf_counter() - click)
                context.close()
        finally:
            browser.close()
    result = {
        "cases": args.cases,
        "html_bytes": len(page_text.encode()),
        "render_seconds": round(render, 3),
        "open_seconds_p50": round(statistics.median(opened), 3),
        "open_seconds_max": round(max(opened), 3),
        "filter_click_seconds_p50": round(statistics.median(filter_click), 3),
        "runs": args.runs,
        "target_open_seconds": TARGET_SECONDS,
        "within_target": max(opened) < TARGET_SECONDS,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
