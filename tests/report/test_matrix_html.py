"""``estuary-matrix --html``: the matrix page from the command line, secrets cut."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_estuary.matrix import main

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def _report(path: Path, client: str, verdict: str, reason: str | None) -> Path:
    case = {"id": "ERR-3", "level": "MUST", "requirement": "Room connect failures are CONNECTION_FAILED."}
    case |= {"nodeid": "conformance/test_error_codes.py::test_err_3", "verdict": verdict, "reason": reason}
    report = {
        "schema_version": 3,
        "run": {"client": {"name": client, "version": "1.0", "option": client}, "target": "embedded fake server"},
        "summary": {"gate": "pass" if verdict == "PASS" else "fail", "counts": {verdict: 1}},
        "cases": [case],
    }
    path.write_text(json.dumps(report))
    return path


def test_matrix_html_from_the_command_line(tmp_path: Path) -> None:
    ours = _report(tmp_path / "ours.json", "ours", "PASS", None)
    theirs = _report(tmp_path / "sdk.json", "sdk", "FAIL", f"raw ConnectError with token {JWT}")
    page = tmp_path / "matrix.html"
    assert main([str(ours), str(theirs), "--html", str(page), "--markdown", str(tmp_path / "m.md")]) == 0
    text = page.read_text()
    assert "<tr data-id='ERR-3'" in text
    assert '<span class="v v-PASS">PASS</span>' in text and '<span class="v v-FAIL">FAIL</span>' in text
    assert "raw ConnectError with token eyJhbGci…" in text
    assert JWT not in text
