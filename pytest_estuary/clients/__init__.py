"""Clients under test: the interface the client cases drive, and its adapters (ours, the official
Python SDK, any client behind a JSON-lines shim)."""

from __future__ import annotations

from pytest_estuary.clients.interface import (
    APP_EVENTS,
    CAPABILITIES,
    LIVEKIT_LIBRARY_ENV,
    ClientEvent,
    ClientFailure,
    ClientInfo,
    ClientSettings,
    ClientState,
    ClientUnderTest,
    Unsupported,
)
from pytest_estuary.clients.json_lines import JsonLinesClient, ShimError, probe
from pytest_estuary.clients.registry import BUILTIN_CLIENTS, ClientKind, resolve_client

__all__ = [
    "APP_EVENTS",
    "BUILTIN_CLIENTS",
    "CAPABILITIES",
    "LIVEKIT_LIBRARY_ENV",
    "ClientEvent",
    "ClientFailure",
    "ClientInfo",
    "ClientKind",
    "ClientSettings",
    "ClientState",
    "ClientUnderTest",
    "JsonLinesClient",
    "ShimError",
    "Unsupported",
    "probe",
    "resolve_client",
]
