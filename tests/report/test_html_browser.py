"""The HTML report in a real browser: headless Debian Chromium driven by Playwright, offline.

The report comes from a real conformance run against the embedded fake with ``no_livekit_ready``
(LK-5 FAILs, LIFE-1 is BLOCKED by it), with a baseline in which LK-5 passed. The screenshot of
the page with LK-5 open is kept at ``<pytest basetemp>/report-screenshot.png`` (printed, and a
``report_screenshot`` property in --junitxml).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tools import chromium

from pytest_estuary.matrix import build_matrix
from pytest_estuary.report.html import matrix_html

CASES = "test_conn_1 or test_lk_1_ or test_lk_5 or test_life_1"
LK_5 = "conformance/test_livekit_handshake.py::test_lk_5_ready_for_the_same_room_within_5s"
LK_1 = "conformance/test_livekit_handshake.py::test_lk_1_token_reply_within_10s"
BASELINE = {
    "schema_version": 3,
    "run": {"started_at": 1_700_000_000.0},
    "cases": [
        {"nodeid": LK_5, "id": "LK-5", "verdict": "PASS", "duration": 1.0, "timings": {}},
        {"nodeid": LK_1, "id": "LK-1", "verdict": "PASS", "duration": 1.0, "timings": {"token_round_trip[null]": 0.5}},
    ],
}
RUN_TIMEOUT = 180


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The HTML page and the JSON of one real conformance run."""
    directory = tmp_path_factory.mktemp("html-report")
    (directory / "baseline.json").write_text(json.dumps(BASELINE))
    command = [sys.executable, "-m", "pytest_estuary.conformance_cli", "-q", "-k", CASES]
    command += ["--estuary-fake-misbehave", '{"no_livekit_ready": true}', "--estuary-report-baseline", "baseline.json"]
    command += ["--estuary-report", "r.json", "--estuary-report-html", "r.html"]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the gate: LK-5 FAILs
    return directory / "r.html", json.loads((directory / "r.json").read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox cannot start as root (the test namespace runs as root)
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


class Opened:
    """A page opened offline, with every console error and every request it attempted."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(url)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()  # nothing may leave the page; the request is still recorded

    def network_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(("file:", "data:"))]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser: Browser, run: tuple[Path, dict[str, Any]]) -> Iterator[Opened]:
    page = Opened(browser, run[0].as_uri())
    yield page
    page.close()


def _visible_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "tbody.case-group:not([hidden]) tr.case td:first-child b", "cells => cells.map(c => c.textContent)"
    )


def test_page_loads_offline_without_errors_and_matches_the_json(
    opened: Opened, run: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, record_property: Any
) -> None:
    _, report = run
    page = opened.page
    assert opened.errors == []
    assert opened.network_requests() == []
    assert page.text_content("#gate") == f"Gate: {report['summary']['gate'].upper()}"
    shown = page.eval_on_selector_all(
        "#counts > span", "spans => spans.map(s => [s.querySelector('.v').textContent, s.textContent])"
    )
    counts = {verdict: int(text.removeprefix(verdict).strip()) for verdict, text in shown}
    assert counts == {verdict: n for verdict, n in report["summary"]["counts"].items() if n}
    assert counts["FAIL"] == 1 and counts["BLOCKED"] == 1
    assert sorted(_visible_ids(page)) == sorted(case["id"] for case in report["cases"])
    assert page.text_content("#shown") == f"{len(report['cases'])} of {len(report['cases'])} cases shown"
    page.click("tbody[data-id='LK-5'] tr.case")
    screenshot = tmp_path_factory.getbasetemp() / "report-screenshot.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    record_property("report_screenshot", str(screenshot))
    print(f"report screenshot: {screenshot}")


def test_filters_by_verdict_and_section_and_search(opened: Opened) -> None:
    page = opened.page
    page.click(".filters button[data-kind=verdict][data-value=PASS]")
    assert sorted(_visible_ids(page)) == ["LIFE-1", "LK-5"]
    assert page.get_attribute(".filters button[data-value=PASS]", "aria-pressed") == "false"
    page.click(".filters button[data-kind=section][data-value=LIFE]")
    assert _visible_ids(page) == ["LK-5"]
    page.click(".filters button[data-kind=verdict][data-value=PASS]")  # PASS back on
    assert sorted(_visible_ids(page)) == ["CONN-1", "LK-1", "LK-5"]
    page.click(".filters button[data-kind=section][data-value=LIFE]")
    page.fill("#search", "muted")  # LIFE-1's requirement text
    assert _visible_ids(page) == ["LIFE-1"]
    assert page.text_content("#shown") == "1 of 4 cases shown"
    assert opened.errors == []


def test_a_failed_case_opens_to_its_reason_and_where_the_handshake_stalled(opened: Opened) -> None:
    page = opened.page
    row = page.locator("tbody[data-id='LK-5'] tr.case")
    detail = row.locator("xpath=following-sibling::tr[1]")
    assert detail.is_hidden()
    row.click()
    assert detail.is_visible()
    assert "no ('livekit_ready', 'livekit_error') within 5.0 s" in detail.locator("pre.reason").text_content()
    bars = detail.locator("svg.waterfall rect.phase")
    names = [title.split(":")[0] for title in bars.locator("title").all_text_contents()]
    assert names[:4] == ["session", "token", "room connect", "ready"]
    stalled = detail.locator("svg.waterfall rect.phase.open title").all_text_contents()
    assert len(stalled) == 1 and stalled[0].startswith("ready: started at")
    detail.locator("summary:has-text('Events on the wire')").click()
    events = detail.locator("table.events").text_content()
    assert "livekit_join" in events and "eyJh…" in events  # the token, abbreviated
    row.click()
    assert detail.is_hidden()
    page.click(".problems a:has-text('LK-5')")  # "Look at these first" links open the case
    assert detail.is_visible()
    row.press("Enter")  # and the keyboard closes it
    assert detail.is_hidden()
    # LIFE-1 drives the client under test: its timeline is the client's events and the fake's log
    page.click("tbody[data-id='LIFE-1'] tr.case")
    life = page.locator("tbody[data-id='LIFE-1'] tr.detail")
    assert "(fake's log)" in life.locator("table.events").text_content()
    assert life.locator("svg.waterfall rect.phase.open").count() == 1


def test_baseline_changes_and_the_latency_panel(opened: Opened) -> None:
    page = opened.page
    assert page.text_content("#changes").split() == ["LK-5", "PASS", "→", "FAIL"]
    latency = page.locator("table.latency tr:has-text('token_round_trip[null]')")
    assert latency.count() == 1
    change = latency.locator("td").last.text_content()
    assert change.startswith(("+", "-")) and "s (" in change  # against the baseline's 0.5 s
    assert page.locator("table.latency tr:has-text('join_to_ready')").count() == 0  # LK-5 never got ready


def test_matrix_page_is_a_coloured_cases_by_clients_table(
    browser: Browser, run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, report = run
    other = json.loads(json.dumps(report))
    other["run"]["client"] = {"name": "other-client", "version": "2.0", "option": "cmd:other"}
    for case in other["cases"]:
        case["verdict"], case["reason"] = ("PASS", None) if case["id"] == "LK-5" else (case["verdict"], case["reason"])
    page_file = tmp_path / "matrix.html"
    page_file.write_text(matrix_html(build_matrix({"ours.json": report, "other.json": other})))
    opened = Opened(browser, page_file.as_uri())
    try:
        page = opened.page
        assert opened.errors == [] and opened.network_requests() == []
        headers = page.eval_on_selector_all("#matrix thead th", "cells => cells.map(c => c.textContent)")
        assert headers[2:] == ["pytest-estuary 0.1.0", "other-client 2.0"]
        lk5 = page.locator("#matrix tr[data-id='LK-5'] td.cell")
        assert [cell.locator(".v").text_content() for cell in lk5.all()] == ["FAIL", "PASS"]
        colour = lk5.first.locator(".v").evaluate("badge => getComputedStyle(badge).backgroundColor")
        assert colour == "rgb(207, 34, 46)"
        assert "livekit_ready" in (lk5.first.get_attribute("title") or "")
    finally:
        opened.close()
