"""``--estuary-client NAME``: which implementation the client cases drive, and how to build it."""

from __future__ import annotations

import importlib.metadata
import shlex
import sys
from abc import ABC, abstractmethod

from pytest_estuary.clients.interface import ClientInfo, ClientSettings, ClientUnderTest

__all__ = ["BUILTIN_CLIENTS", "ClientKind", "CommandClients", "InProcessClients", "resolve_client"]

BUILTIN_CLIENTS = ("ours", "estuary-sdk")


class ClientKind(ABC):
    """Builds clients of one implementation for the cases; ``info()`` names it in the report."""

    option: str  # the --estuary-client value

    @abstractmethod
    def info(self) -> ClientInfo: ...

    @abstractmethod
    async def create(self, settings: ClientSettings) -> ClientUnderTest: ...


class InProcessClients(ClientKind):
    """A Python client driven in this process; with its LiveKit library missing or broken it runs
    behind the JSON-lines shim in a fresh Python where the library is blocked."""

    def __init__(self, option: str) -> None:
        self.option = option
        if option == "estuary-sdk":
            try:
                importlib.metadata.version("estuary-sdk")
            except importlib.metadata.PackageNotFoundError:
                raise ValueError(
                    "--estuary-client estuary-sdk needs the official SDK installed: "
                    "pip install 'pytest-estuary[estuary-sdk]'"
                ) from None

    def info(self) -> ClientInfo:
        if self.option == "ours":
            from pytest_estuary import __version__
            from pytest_estuary.clients.ours import CAPABILITIES

            return ClientInfo("pytest-estuary", __version__, CAPABILITIES)
        from pytest_estuary.clients.estuary_sdk import CAPABILITIES as SDK_CAPABILITIES

        return ClientInfo("estuary-sdk", importlib.metadata.version("estuary-sdk"), SDK_CAPABILITIES)

    async def create(self, settings: ClientSettings) -> ClientUnderTest:
        if settings.livekit_library != "present":
            from pytest_estuary.clients.json_lines import JsonLinesClient

            command = [sys.executable, "-m", "pytest_estuary.clients.shim", self.option]
            return await JsonLinesClient.start(command, settings)
        if self.option == "ours":
            from pytest_estuary.clients.ours import OurClient

            return OurClient(settings)
        from pytest_estuary.clients.estuary_sdk import EstuarySdkClient

        return EstuarySdkClient(settings)


class CommandClients(ClientKind):
    """A client in any language behind a JSON-lines shim command (``cmd:<command line>``)."""

    def __init__(self, option: str, command: list[str]) -> None:
        self.option, self.command = option, command
        self._info: ClientInfo | None = None

    def info(self) -> ClientInfo:
        if self._info is None:
            from pytest_estuary.clients.json_lines import probe

            self._info = probe(self.command)
        return self._info

    async def create(self, settings: ClientSettings) -> ClientUnderTest:
        from pytest_estuary.clients.json_lines import JsonLinesClient

        return await JsonLinesClient.start(self.command, settings)


def resolve_client(option: str) -> ClientKind:
    """The client kind for an ``--estuary-client`` value; ValueError saying what is accepted."""
    if option in BUILTIN_CLIENTS:
        return InProcessClients(option)
    if option.startswith("cmd:"):
        try:
            command = shlex.split(option[4:])
        except ValueError as exc:
            raise ValueError(f"--estuary-client {option!r}: the command line does not parse: {exc}") from None
        if not command:
            raise ValueError("--estuary-client 'cmd:' needs a command line after the colon, e.g. 'cmd:node shim.js'")
        return CommandClients(option, command)
    raise ValueError(
        f"--estuary-client {option!r}: expected one of {', '.join(BUILTIN_CLIENTS)}, or 'cmd:<command line>' "
        "for a client behind a JSON-lines shim"
    )
