"""One exploration per test session, shared by the EXPLORE cases: run by the first that needs it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.explore.bounds import Bounds
from conformance.explore.runner import Exploration, Finding, explore, replay_finding
from conformance.explore.world import LoopThread, World
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.settings import EstuarySettings
from pytest_estuary.targets import EstuaryTarget

__all__ = ["Outcome", "exploration"]


@dataclass
class Outcome:
    """The exploration (or the replay of one finding), or the harness error that ended it."""

    exploration: Exploration | None
    error: BaseException | None = None


_OUTCOME = pytest.StashKey[Outcome]()


def exploration(request: pytest.FixtureRequest, target: EstuaryTarget, settings: EstuarySettings) -> Outcome:
    """The session's exploration, run now if no case ran it yet."""
    stash = request.config.stash
    if _OUTCOME not in stash:
        stash[_OUTCOME] = _run(request, target, settings)
    return stash[_OUTCOME]


def _run(request: pytest.FixtureRequest, target: EstuaryTarget, settings: EstuarySettings) -> Outcome:
    livekit = _livekit(request, target, settings)
    loop = LoopThread()
    world = World(target, Bounds.for_timeout(target.timeout), loop, livekit)
    try:
        replay = settings.explore_replay
        if replay is not None and replay.is_finding:
            return Outcome(_replayed(world, replay))
        return Outcome(
            explore(
                world,
                budget=settings.explore_time,
                examples=settings.explore_examples,
                seed=replay.seed if replay is not None else settings.explore_seed,
                database=settings.explore_db or not settings.live,
                first_only=request.config.option.maxfail == 1,  # -x: the first finding is enough
            )
        )
    except Exception as exc:  # every EXPLORE case reports it as ERROR
        return Outcome(None, exc)
    finally:
        try:
            world.reset()
        finally:
            loop.close()


def _livekit(
    request: pytest.FixtureRequest, target: EstuaryTarget, settings: EstuarySettings
) -> LiveKitCredentials | None:
    """The LiveKit server's credentials where they are known: embedded mode's own server, or in
    live mode the target's LiveKit given with --livekit-url/-api-key/-api-secret (rooms are listed then)."""
    if target.mode == "fake":
        creds: LiveKitCredentials = request.getfixturevalue("livekit_server")
        return creds
    if settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret:
        return LiveKitCredentials(settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret)
    return None


def _replayed(world: World, replay: object) -> Exploration:
    from pytest_estuary.explore_replay import ExploreReplay

    assert isinstance(replay, ExploreReplay) and replay.requirement is not None
    import hypothesis

    if replay.blob is not None and replay.version != hypothesis.__version__:
        raise pytest.UsageError(
            f"--estuary-explore-replay: the line was made with hypothesis {replay.version}; this is "
            f"{hypothesis.__version__}, which reads its choices differently (install that version to replay it)"
        )
    result = Exploration(seed=0)
    breach = replay_finding(world, replay)
    result.sequences, result.steps = world.sequences, world.total_steps
    result.exercised = {replay.requirement}
    if breach is not None:
        result.findings[replay.requirement] = Finding(replay.requirement, breach.message, breach.steps, replay.line())
    return result
