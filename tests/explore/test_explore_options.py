"""The explorer's options: usage errors that name the option, and nothing collected without the flag."""

from __future__ import annotations

import pytest

from pytest_estuary.conformance_cli import CONFIG_FILE, suite_dir

CASE = """
import pytest

@pytest.mark.estuary_case("LK-1", "MUST")
def test_lk_1_something():
    '''A requirement in one sentence.'''
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estuary-explore-time", "soon"], "*--estuary-explore-time (*) must be a number of seconds, got 'soon'*"),
        (["--estuary-explore-time", "0"], "*--estuary-explore-time (*) must be a finite number of seconds > 0*"),
        (["--estuary-explore-examples", "0"], "*--estuary-explore-examples (*) must be a whole number ≥ 1, got '0'*"),
        (["--estuary-explore-seed", "-1"], "*--estuary-explore-seed must be a whole number ≥ 0, got '-1'*"),
        (["--estuary-explore-replay", "LK-9 please"], "*--estuary-explore-replay must be a seed (*got 'LK-9 please'*"),
    ],
)  # fmt: skip
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(CASE)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_without_the_flag_no_explore_case_is_collected(pytester: pytest.Pytester) -> None:
    suite = suite_dir()
    common = ["-c", str(CONFIG_FILE), f"--rootdir={suite.parent}", "-p", "no:cacheprovider", "--collect-only", "-q"]
    plain = pytester.runpytest_subprocess(*common, str(suite))
    assert "test_explore[" not in plain.stdout.str()
    explored = pytester.runpytest_subprocess(*common, "--estuary-explore", str(suite / "explore"))
    explored.stdout.fnmatch_lines(["*test_explore[[]WIRE-1[]]*", "*test_explore[[]LK-9[]]*"])
