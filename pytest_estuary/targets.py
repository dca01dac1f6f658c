"""What is under test (the embedded fake or a live server) and a factory of clients for it."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_estuary.settings import redact_url

if TYPE_CHECKING:
    from pytest_estuary.client import EstuaryClient

__all__ = ["ClientFactory", "EstuaryTarget", "close_all"]


@dataclass(frozen=True)
class EstuaryTarget:
    """URL and credentials of the Estuary server under test."""

    url: str
    api_key: str = field(repr=False)
    character_id: str
    player_id: str
    mode: Literal["fake", "live"]
    timeout: float = 10.0
    ca_file: Path | None = None  # --estuary-ca-file: trusted besides the system store
    socketio_path: str = "/socket.io/"  # --estuary-socketio-path
    _tls: list[ssl.SSLContext] = field(default_factory=list, repr=False, compare=False)

    def tls(self) -> ssl.SSLContext:
        """The SSL context for this target's connections (built once)."""
        if not self._tls:
            from pytest_estuary.tls import ssl_context

            self._tls.append(ssl_context(self.ca_file))
        return self._tls[0]

    def __repr__(self) -> str:
        return (
            f"EstuaryTarget(url={redact_url(self.url)!r}, api_key={self.api_key[:4]!r}…, "
            f"character_id={self.character_id!r}, player_id={self.player_id!r}, mode={self.mode!r})"
        )

    def unique_player_id(self) -> str:
        """The configured player id plus a short random suffix: sessions never share a player."""
        return f"{self.player_id}-{uuid.uuid4().hex[:8]}"


class ClientFactory:
    """Makes connected :class:`EstuaryClient` objects for a target; closes them all in ``aclose``."""

    def __init__(self, target: EstuaryTarget) -> None:
        self.target = target
        self.clients: list[EstuaryClient] = []

    async def __call__(self, *, connect: bool = True, **overrides: Any) -> EstuaryClient:
        """A client for the target (connected unless ``connect=False``); keyword overrides win.

        Each client gets its own player id (``target.player_id`` plus a suffix) unless one is given.
        """
        from pytest_estuary.client import EstuaryClient  # the plugin loads without the client deps

        options: dict[str, Any] = {
            "server_url": self.target.url,
            "api_key": self.target.api_key,
            "character_id": self.target.character_id,
            "player_id": self.target.unique_player_id(),
            "ca_file": self.target.ca_file,
            "ssl_context": self.target.tls(),
            "socketio_path": self.target.socketio_path,
        }
        options.update(overrides)
        client = EstuaryClient(**options)
        self.clients.append(client)
        if connect:
            await client.connect()
        return client

    async def aclose(self) -> None:
        """Disconnect every client made here, the failing ones too; raises the first error after all."""
        clients, self.clients = self.clients, []
        await close_all([client.disconnect for client in reversed(clients)])


async def close_all(closers: list[Callable[[], Awaitable[object]]]) -> None:
    """Run every closer, the ones after a failing one too; raise the first error once all ran."""
    first_error: BaseException | None = None
    for close in closers:
        try:
            await close()
        except Exception as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
