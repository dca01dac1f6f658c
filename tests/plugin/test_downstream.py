"""The README's example, run as a downstream project runs it: embedded fake, then live mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_voice_app.py"
INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def downstream(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_voice_app=EXAMPLE.read_text())
    return pytester


def test_example_passes_against_the_embedded_fake_server(downstream: pytest.Pytester) -> None:
    result = downstream.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_example_passes_live_with_fake_only_tests_skipped(
    downstream: pytest.Pytester, standalone_fake: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = standalone_fake(transcripts=["hello"])
    monkeypatch.setenv("ESTUARY_API_KEY", server["api_key"])
    result = downstream.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--estuary-live", "--estuary-url", server["url"]
    )
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*needs control of the embedded fake server; not available with --estuary-live*"])
    assert server["api_key"] not in result.stdout.str()
