"""EXPLORE cases (``--estuary-explore``): one per requirement the explorer can break.

The exploration runs once, in the first of these cases; each then reports its requirement: FAIL
with the shrunk sequence and its replay line, SKIPPED "flaky: …" when the finding did not happen
again on replay, PASS when no sequence broke it.
"""

from __future__ import annotations

import warnings

import pytest

from conformance.explore.requirements import EXPLORED, LEVELS
from conformance.explore.session import exploration
from conformance.explore.steps import render_steps
from pytest_estuary.report import REPLAY_PROPERTY, STEPS_PROPERTY, TIMING_PROPERTY
from pytest_estuary.settings import EstuarySettings
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.verdicts import Blocked, violation

REPLAY_OPTION = "--estuary-explore-replay"


@pytest.mark.parametrize(
    "requirement",
    [pytest.param(r, marks=pytest.mark.estuary_case(r, LEVELS[r]), id=r) for r in EXPLORED],
)
def test_explore(
    requirement: str,
    request: pytest.FixtureRequest,
    estuary_target: EstuaryTarget,
    estuary_settings: EstuarySettings,
) -> None:
    """No sequence of client actions breaks the requirement (EXPLORE)."""
    replay = estuary_settings.explore_replay
    if replay is not None and replay.is_finding and replay.requirement != requirement:
        pytest.skip(f"replaying a finding of {replay.requirement} only")
    outcome = exploration(request, estuary_target, estuary_settings)
    if outcome.error is not None:
        raise outcome.error
    explored = outcome.exploration
    assert explored is not None
    if explored.overran:
        warnings.warn(
            f"the exploration stopped at its hard bound after {explored.seconds:.0f} s "
            f"(budget {estuary_settings.explore_time:g} s): a sequence or a shrink would not end",
            stacklevel=1,
        )
    if explored.steps:  # how much was explored, in the report's timings (seconds, as they all are)
        request.node.user_properties.append((TIMING_PROPERTY, ("explore_seconds", explored.seconds)))
        request.node.user_properties.append(
            (TIMING_PROPERTY, ("explore_seconds_per_step", explored.seconds / explored.steps))
        )
    finding = explored.findings.get(requirement)
    if requirement in explored.first_finding_after:  # from the start of exploring, before shrinking
        request.node.user_properties.append(
            (TIMING_PROPERTY, ("explore_first_finding_after", explored.first_finding_after[requirement]))
        )
    if finding is not None:
        line = f"{REPLAY_OPTION} '{finding.replay}'" if finding.replay else None
        request.node.user_properties.append((STEPS_PROPERTY, finding.steps))
        if line:
            request.node.user_properties.append((REPLAY_PROPERTY, line))
        sequence = render_steps(finding.steps, line)
        if finding.flaky:
            pytest.skip(f"flaky: {requirement} broke once, but {finding.flaky}: {finding.message}\n{sequence}")
        raise violation(requirement, f"{finding.message}\n\nThe shrunk sequence:\n{sequence}")
    if requirement not in explored.exercised:
        if explored.blocks:
            blocker, seen = next(iter(explored.blocks.items()))
            raise Blocked(blocker, f"exploring {requirement}", seen)
        pytest.skip(f"no sequence reached {requirement} in {explored.sequences} sequences ({explored.seconds:.0f} s)")
