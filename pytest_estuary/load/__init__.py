"""Load conformance on Locust: do the MUSTs hold with hundreds of sessions, and where does the server bend.

What this package exports imports no Locust (importing ``locust`` monkey-patches the process for
gevent, which must never happen inside pytest or the plugin): the phases and their bounds, the
gate, the summary, the knee. The Locust users live in :mod:`pytest_estuary.load.locustfile`, the
step shape in :mod:`pytest_estuary.load.step_shape`; ``estuary-load`` runs Locust with them.
"""

from __future__ import annotations

from pytest_estuary.load.mix import USER_CLASSES, parse_mix
from pytest_estuary.load.phases import DEFAULT_TIMEOUT, ERROR_ID, PHASES, Phase, phase
from pytest_estuary.load.recordings import Recording, load_recordings
from pytest_estuary.load.scenarios import KINDS, Kind, SessionSettings, run_session

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERROR_ID",
    "KINDS",
    "PHASES",
    "USER_CLASSES",
    "Kind",
    "Phase",
    "Recording",
    "SessionSettings",
    "load_recordings",
    "parse_mix",
    "phase",
    "run_session",
]
