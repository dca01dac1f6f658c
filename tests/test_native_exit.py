"""A session that started livekit's native runtime ends with its own status, through the handler
that ends it before the interpreter finalizes (pytest_estuary.native_exit)."""

from __future__ import annotations

import pytest

STARTS_LIVEKIT = """
import atexit
from pathlib import Path

from livekit import rtc


def test_livekit_runtime_runs():
    source = rtc.AudioSource(48000, 1)  # starts livekit's FFI client and its runtime
    # registered after the session armed the handler: atexit runs it first, as usual
    atexit.register(lambda: Path("later-handler-ran").write_text("yes"))
    assert source is not None
    assert {outcome}
"""


@pytest.mark.parametrize(("outcome", "status"), [("True", 0), ("False", 1)], ids=["passes", "fails"])
def test_the_process_ends_with_the_sessions_status(pytester: pytest.Pytester, outcome: str, status: int) -> None:
    pytester.makepyfile(STARTS_LIVEKIT.format(outcome=outcome))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.ret == status, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"*1 {'passed' if status == 0 else 'failed'}*"])
    assert (pytester.path / "later-handler-ran").read_text() == "yes"
    assert "panic" not in result.stderr.str()


def test_a_session_without_livekit_finalizes_as_usual(pytester: pytest.Pytester) -> None:
    # registered before the session armed the handler: it runs only if the process exits as usual
    pytester.makeconftest(
        """
        import atexit
        from pathlib import Path

        atexit.register(lambda: Path("early-handler-ran").write_text("yes"))
        """
    )
    pytester.makepyfile("def test_no_livekit():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert (pytester.path / "early-handler-ran").read_text() == "yes"
