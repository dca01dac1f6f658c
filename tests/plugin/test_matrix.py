"""estuary-matrix on reports it can and cannot merge (the real three-client matrix is a proof)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_estuary.matrix import MatrixError, build_matrix, load_report, main, matrix_markdown


def report(client: str, version: str, verdict: str, reason: str | None = None) -> dict[str, object]:
    return {
        "schema_version": 2,
        "run": {"client": {"option": client, "name": client, "version": version}, "target": "embedded fake server"},
        "summary": {"gate": "pass" if verdict == "PASS" else "fail", "counts": {verdict: 1}},
        "cases": [
            {
                "id": "SEL-1",
                "level": "MUST",
                "requirement": "auto uses LiveKit",
                "nodeid": "conformance/test_transport_selection.py::test_sel_1_auto",
                "verdict": verdict,
                "reason": reason,
                "blocked_by": None,
            }
        ],
    }


def test_rows_are_cases_and_columns_clients() -> None:
    matrix = build_matrix(
        {"a.json": report("ours", "1", "PASS"), "b.json": report("sdk", "0.8", "FAIL", "Expected: livekit\nActual: ws")}
    )
    assert [c["label"] for c in matrix["columns"]] == ["ours 1", "sdk 0.8"]
    cells = matrix["rows"][0]["cells"]
    assert cells["sdk 0.8"] == {"verdict": "FAIL", "reason": "Expected: livekit Actual: ws", "blocked_by": None}
    text = matrix_markdown(matrix)
    assert "| SEL-1 | MUST | `test_sel_1_auto` | **PASS** | **FAIL** Expected: livekit Actual: ws |" in text
    assert "| sdk 0.8 | **FAIL** | 1 FAIL | `b.json` |" in text


def test_the_same_client_twice_keeps_both_columns() -> None:
    matrix = build_matrix({"x.json": report("ours", "1", "PASS"), "y.json": report("ours", "1", "FAIL", "no")})
    assert [c["label"] for c in matrix["columns"]] == ["ours 1", "ours 1 (y.json)"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a conformance report"),
        (json.dumps({"schema_version": 1, "run": {}, "cases": []}), "the matrix needs 2 or later"),
    ],
)
def test_bad_input_names_the_file(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MatrixError, match=says) as failure:
        load_report(path)
    assert str(path) in str(failure.value)


def test_cli_writes_both_files_and_exits_2_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text(json.dumps(report("ours", "1", "PASS")))
    assert (
        main([str(tmp_path / "a.json"), "--json", str(tmp_path / "m.json"), "--markdown", str(tmp_path / "m.md")]) == 0
    )
    assert json.loads((tmp_path / "m.json").read_text())["columns"][0]["label"] == "ours 1"
    assert (tmp_path / "m.md").read_text().startswith("## Estuary client matrix")
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read it" in capsys.readouterr().err
