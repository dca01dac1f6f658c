"""The client matrix: several conformance reports (one per client) merged into one table —
rows are cases, columns are clients, cells are verdicts with a one-line reason.

    estuary-matrix ours.json estuary-sdk.json --json matrix.json --markdown matrix.md --html matrix.html
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_estuary.report import case_sort_key, table_cell

__all__ = ["MatrixError", "build_matrix", "load_report", "main", "matrix_markdown"]

MATRIX_SCHEMA_VERSION = 1
REASON_LIMIT = 110  # a cell's one-line reason, in characters


class MatrixError(ValueError):
    """An input that is not a conformance report of this plugin (the message names the file)."""


def load_report(path: Path) -> dict[str, Any]:
    """A JSON conformance report (``--estuary-report``), checked for what the matrix needs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise MatrixError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not isinstance(data.get("run"), dict):
        raise MatrixError(f"{path}: not a conformance report (expected the JSON of --estuary-report: run, cases)")
    if data.get("schema_version", 0) < 2:
        raise MatrixError(f"{path}: report schema {data.get('schema_version')!r}; the matrix needs 2 or later")
    return data


def _column(report: dict[str, Any], path: str) -> str:
    client = report["run"].get("client") or {}
    name = f"{client.get('name', '?')} {client.get('version', '?')}".strip()
    return name if client else f"unknown client ({path})"


def build_matrix(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The matrix of ``{source name: report}``: clients in the given order, rows by requirement."""
    columns: list[dict[str, Any]] = []
    rows: dict[str, dict[str, Any]] = {}
    for source, report in reports.items():
        label = _column(report, source)
        if any(column["label"] == label for column in columns):
            label = f"{label} ({source})"  # the same client twice (e.g. two settings): keep both apart
        summary = report.get("summary", {})
        columns.append(
            {
                "label": label,
                "source": source,
                "client": report["run"].get("client"),
                "target": report["run"].get("target"),
                "gate": summary.get("gate"),
                "counts": summary.get("counts", {}),
            }
        )
        for case in report["cases"]:
            test = str(case["nodeid"]).rsplit("::", 1)[-1]
            fresh = {"id": case["id"], "level": case["level"], "test": test, "requirement": case["requirement"]}
            row = rows.setdefault(test, fresh | {"cells": {}})
            reason = " ".join(str(case.get("reason") or "").split())
            row["cells"][label] = {"verdict": case["verdict"], "reason": reason, "blocked_by": case.get("blocked_by")}
    ordered = sorted(rows.values(), key=lambda row: (case_sort_key(row["id"]), row["test"]))
    return {"schema_version": MATRIX_SCHEMA_VERSION, "columns": columns, "rows": ordered}


def matrix_markdown(matrix: dict[str, Any]) -> str:
    """The matrix as Markdown: a gate line per client, then one row per case."""
    labels = [column["label"] for column in matrix["columns"]]
    lines = ["## Estuary client matrix", "", "| client | gate | verdicts | report |", "|---|---|---|---|"]
    for column in matrix["columns"]:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in column["counts"].items() if n) or "no cases"
        lines.append(f"| {column['label']} | **{str(column['gate']).upper()}** | {counts} | `{column['source']}` |")
    lines += ["", "| case | level | test | " + " | ".join(labels) + " |", "|---|---|---|" + "---|" * len(labels)]
    for row in matrix["rows"]:
        cells = []
        for label in labels:
            cell = row["cells"].get(label)
            if cell is None:
                cells.append("—")
                continue
            why = cell["reason"] if cell["verdict"] != "PASS" else ""
            cells.append(f"**{cell['verdict']}**" + (f" {table_cell(why, REASON_LIMIT)}" if why else ""))
        lines.append(f"| {row['id']} | {row['level']} | `{row['test']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="estuary-matrix", description="Merge conformance reports of several clients into one matrix."
    )
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports written with --estuary-report")
    parser.add_argument("--json", type=Path, help="write the matrix as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the matrix as Markdown here (default: print it)")
    parser.add_argument("--html", type=Path, help="write the matrix as one self-contained HTML page here")
    args = parser.parse_args(argv)
    try:
        matrix = build_matrix({str(path): load_report(path) for path in args.reports})
    except MatrixError as exc:
        print(f"estuary-matrix: {exc}", file=sys.stderr)
        return 2
    text = matrix_markdown(matrix)
    if args.json:
        args.json.write_text(json.dumps(matrix, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.html:
        from pytest_estuary.report import scrub_tokens
        from pytest_estuary.report.html import matrix_html

        args.html.write_text(scrub_tokens(matrix_html(matrix)), encoding="utf-8")
    if not args.markdown:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
