"""The README shows the example that the suite runs, verbatim, and the commands CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_is_the_tested_file() -> None:
    example = (ROOT / "examples" / "test_voice_app.py").read_text().rstrip()
    assert example in (ROOT / "README.md").read_text(), "README's example drifted from examples/test_voice_app.py"


def test_readme_shim_is_the_tested_file() -> None:
    shim = (ROOT / "examples" / "line_protocol_shim.py").read_text().rstrip()
    assert shim in (ROOT / "README.md").read_text(), "README's shim drifted from examples/line_protocol_shim.py"


def test_ci_runs_the_readme_test_command() -> None:
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "\nmake test\n" in ci
