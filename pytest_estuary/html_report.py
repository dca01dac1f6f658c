"""pytest-html columns for conformance cases: case ID, level, verdict and timings.

Registered by the plugin only when pytest-html is installed (the ``html`` extra); pytest-html
writes the page, we only add cells to its results table.
"""

from __future__ import annotations

import html
from typing import Any

import pytest

from pytest_estuary.report import CASE_PROPERTY, TIMING_PROPERTY, VERDICT_PROPERTY

__all__ = ["HtmlColumns"]

COLUMNS = (("caseId", "Case"), ("level", "Level"), ("verdict", "Verdict"), ("timings", "Timings"))


def _verdict(report: pytest.TestReport, props: dict[str, Any]) -> str:
    classified = props.get(VERDICT_PROPERTY)
    if isinstance(classified, dict):
        return str(classified["verdict"])
    if report.when != "call":
        return "ERROR" if report.failed else ("SKIPPED" if report.skipped else "")
    return "FAIL" if report.failed else ("SKIPPED" if report.skipped else "PASS")


class HtmlColumns:
    """The pytest-html hooks: four sortable columns after the result."""

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        for offset, (key, title) in enumerate(COLUMNS, start=1):
            cells.insert(offset, f'<th class="sortable" data-column-type="{key}">{title}</th>')

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        props = dict(report.user_properties)
        meta = props.get(CASE_PROPERTY)
        case = meta if isinstance(meta, dict) else {}
        timings = ", ".join(
            f"{value[0]} {float(value[1]):.3f} s"
            for key, value in report.user_properties
            if key == TIMING_PROPERTY and isinstance(value, (tuple, list)) and len(value) == 2
        )
        values = (
            case.get("id", ""),
            case.get("level", ""),
            _verdict(report, props) if case else "",
            timings,
        )
        for offset, ((key, _), value) in enumerate(zip(COLUMNS, values, strict=True), start=1):
            cells.insert(offset, f'<td class="col-{key}">{html.escape(str(value))}</td>')
