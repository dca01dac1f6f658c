"""Locust users for the Estuary protocol: ``locust -f`` this file (``estuary-load`` does).

Three users, each looping over whole sessions: :class:`EstuaryTextUser` (connect → session_info →
a text round trip), :class:`EstuaryLiveKitVoiceUser` and :class:`EstuaryWebSocketVoiceUser` (connect →
voice handshake → speech → final transcript → final reply → bot audio → stop → disconnect). Each
phase is a Locust request of type ``estuary`` named after the phase, with its duration; a phase
that broke a requirement is a failure whose message starts with the requirement ID.

The sessions run in this process's session engine (:mod:`pytest_estuary.load.engine`). Settings come
from the environment ``estuary-load`` sets: ``ESTUARY_URL``, ``ESTUARY_API_KEY`` and
``ESTUARY_LOAD_MIX`` (the weights, e.g. ``text=1,livekit=2,websocket=0``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from locust import User, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from pytest_estuary.load.bridge import Engine
from pytest_estuary.load.gate import PERCENTILES
from pytest_estuary.load.mix import parse_mix

__all__ = ["EstuaryLiveKitVoiceUser", "EstuaryTextUser", "EstuaryUser", "EstuaryWebSocketVoiceUser"]

_ENGINE = Engine()


class EstuaryUser(User):
    """One simulated person: a whole session per task, one after another."""

    abstract = True
    kind = "text"
    wait_time = between(0.5, 1.5)  # spread the sessions out instead of all in step

    @task
    def session(self) -> None:
        fire = self.environment.events.request.fire
        for name, seconds, failure in _ENGINE.run(self.kind):
            fire(request_type="estuary", name=name, response_time=seconds * 1000.0, response_length=0,
                 exception=failure, context={"kind": self.kind})  # fmt: skip


class EstuaryTextUser(EstuaryUser):
    kind = "text"


class EstuaryLiveKitVoiceUser(EstuaryUser):
    kind = "livekit"


class EstuaryWebSocketVoiceUser(EstuaryUser):
    kind = "websocket"


_CLASSES: dict[str, type[EstuaryUser]] = {
    "text": EstuaryTextUser, "livekit": EstuaryLiveKitVoiceUser, "websocket": EstuaryWebSocketVoiceUser,
}  # fmt: skip

for _kind, _weight in parse_mix(os.environ.get("ESTUARY_LOAD_MIX") or "text=1").items():
    _CLASSES[_kind].weight = _weight


def _stop_engine(environment: Environment, **_kwargs: Any) -> None:
    _ENGINE.close()


_ENVIRONMENT: list[Environment] = []


def _remember(environment: Environment, **_kwargs: Any) -> None:
    _ENVIRONMENT.append(environment)


def _write_final_stats(**_kwargs: Any) -> None:
    """``ESTUARY_LOAD_FINAL``: every phase's counts, percentiles and failures once all users stopped
    (Locust's CSV files are rewritten once a second and not at exit); the master's or local runner's."""
    path = os.environ.get("ESTUARY_LOAD_FINAL")
    runner = _ENVIRONMENT[-1].runner if _ENVIRONMENT else None
    if not path or runner is None or isinstance(runner, WorkerRunner):
        return
    phases = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "percentiles": {
                key: entry.get_response_time_percentile(fraction) / 1000.0 for key, fraction in PERCENTILES.items()
            },
        }
        for (name, method), entry in runner.stats.entries.items()
        if method == "estuary"
    }
    failures = [[error.name, error.error, error.occurrences] for error in runner.stats.errors.values()]
    Path(path).write_text(json.dumps({"phases": phases, "failures": failures}, indent=1))


events.init.add_listener(_remember)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_stop_engine)  # type: ignore[no-untyped-call]
events.quit.add_listener(_write_final_stats)  # type: ignore[no-untyped-call]
