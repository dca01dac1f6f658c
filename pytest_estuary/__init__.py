"""pytest-estuary: a pytest plugin and conformance harness for the Estuary voice protocol."""

from __future__ import annotations

from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer, LiveKitServerError
from pytest_estuary.report import ConformanceReport
from pytest_estuary.settings import EstuarySettings
from pytest_estuary.targets import ClientFactory, EstuaryTarget
from pytest_estuary.verdicts import Blocked, ProtocolViolation, Verdict, step

__version__ = "0.1.0"

__all__ = [
    "Blocked",
    "ClientFactory",
    "ConformanceReport",
    "EstuarySettings",
    "EstuaryTarget",
    "LiveKitCredentials",
    "LiveKitServer",
    "LiveKitServerError",
    "ProtocolViolation",
    "Verdict",
    "__version__",
    "step",
]
