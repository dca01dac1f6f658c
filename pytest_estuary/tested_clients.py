"""The clients under test for a target: ``client = await estuary_tested_client(voice_transport="livekit")``
builds one of the ``--estuary-client`` implementation, connected, closed at teardown."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from pytest_estuary.clients.interface import ClientInfo, ClientSettings, ClientUnderTest, Unsupported
from pytest_estuary.clients.registry import ClientKind
from pytest_estuary.targets import EstuaryTarget, close_all

__all__ = ["CLIENT_KIND_KEY", "TestedClients"]

CLIENT_KIND_KEY = pytest.StashKey[ClientKind]()  # resolved once per run from --estuary-client

_SETTING_NAMES = frozenset(f.name for f in fields(ClientSettings)) - {"server_url", "api_key", "character_id"}


class TestedClients:
    """Makes clients of one implementation for a target; what it cannot do SKIPs the test."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name

    def __init__(self, kind: ClientKind, target: EstuaryTarget) -> None:
        self.kind = kind
        self.target = target
        self.clients: list[ClientUnderTest] = []

    @property
    def info(self) -> ClientInfo:
        return self.kind.info()

    def settings(self, **overrides: Any) -> ClientSettings:
        unknown = sorted(set(overrides) - _SETTING_NAMES)
        if unknown:
            raise TypeError(f"unknown client settings {unknown}; expected some of {sorted(_SETTING_NAMES)}")
        values: dict[str, Any] = {"player_id": self.target.unique_player_id()} | overrides
        return ClientSettings(
            server_url=self.target.url, api_key=self.target.api_key, character_id=self.target.character_id, **values
        )

    async def __call__(self, *, connect: bool = True, **overrides: Any) -> ClientUnderTest:
        settings = self.settings(**overrides)
        info = self.info
        for capability, what in settings.needs().items():  # the one place a capability is checked
            if capability not in info.capabilities:
                pytest.skip(f"{info.name} {info.version} cannot be built with {what} (no {capability!r} capability)")
        try:
            client = await self.kind.create(settings)
        except Unsupported as exc:
            pytest.skip(f"{self.info.name} {self.info.version}: {exc}")
        self.clients.append(client)
        if connect:
            await client.connect()
        return client

    async def aclose(self) -> None:
        """Close every client made here, the failing ones too; raises the first error after all."""
        clients, self.clients = self.clients, []
        await close_all([client.aclose for client in reversed(clients)])
