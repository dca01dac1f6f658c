"""A fake Estuary server for tests: real Socket.IO, real LiveKit tokens, a real bot, misbehaviour on demand.

It imports nothing from ``pytest_estuary``: it is the client's independent peer.
"""

from __future__ import annotations

from fake_server.eventlog import EventLog, EventWaitTimeout, RecordedEvent, Violation
from fake_server.misbehaviour import Misbehaviour, MisbehaviourError
from fake_server.server import FakeEstuaryServer, FakeServerError
from fake_server.sessions import SessionView
from fake_server.tokens import LiveKitConfig

__all__ = [
    "EventLog",
    "EventWaitTimeout",
    "FakeEstuaryServer",
    "FakeServerError",
    "LiveKitConfig",
    "Misbehaviour",
    "MisbehaviourError",
    "RecordedEvent",
    "SessionView",
    "Violation",
]
