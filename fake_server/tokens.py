"""Real LiveKit access tokens (livekit-api), and the broken ones misbehaviour asks for."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from livekit import api

from fake_server.misbehaviour import Misbehaviour

__all__ = [
    "MESSAGE_ATTRIBUTE",
    "SESSION_ATTRIBUTE",
    "STATE_ATTRIBUTE",
    "LiveKitConfig",
    "TokenReply",
    "bot_token",
    "mint",
    "unreachable_url",
]

EXPIRED_BY_SECONDS = 120  # livekit-server allows 60 s of clock leeway
STATE_ATTRIBUTE = "estuary.state"  # the bot's speaking/idle participant attribute (LK-10)
SESSION_ATTRIBUTE = "estuary.session_id"  # the session a bot serves (the fake server's own)
MESSAGE_ATTRIBUTE = "estuary.message_id"  # the reply the bot is speaking; "" when idle (protocol.md §9)


@dataclass(frozen=True)
class LiveKitConfig:
    """The LiveKit server the fake server mints tokens for."""

    url: str
    api_key: str
    api_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValueError(f"LiveKitConfig.url must be a ws://, wss://, http:// or https:// URL, got {self.url!r}")
        if not self.api_key or not self.api_secret:
            raise ValueError("LiveKitConfig needs a non-empty api_key and api_secret")

    @property
    def ws_url(self) -> str:
        return self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)

    @property
    def http_url(self) -> str:
        return self.ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


@dataclass(frozen=True)
class TokenReply:
    token: str
    url: str
    room: str


def unreachable_url() -> str:
    """A loopback URL with nothing listening (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def mint(
    config: LiveKitConfig,
    *,
    identity: str,
    room: str,
    ttl: float,
    name: str | None = None,
    misbehaviour: Misbehaviour | None = None,
) -> TokenReply:
    """A token for ``identity`` to join only ``room`` (publish and subscribe), valid ``ttl`` seconds."""
    bad = misbehaviour or Misbehaviour()
    secret = secrets.token_urlsafe(36) if bad.token_wrong_secret else config.api_secret
    granted_room = f"{room}-other" if bad.token_other_room else room
    lifetime = -EXPIRED_BY_SECONDS if bad.token_expired else ttl
    grants = api.VideoGrants(room_join=True, room=granted_room, can_publish=True, can_subscribe=True)
    token = (
        api.AccessToken(config.api_key, secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_grants(grants)
        .with_ttl(timedelta(seconds=lifetime))
        .to_jwt()
    )
    url = unreachable_url() if bad.token_unreachable_url else config.ws_url
    return TokenReply(token=token, url=url, room=room)


def bot_token(config: LiveKitConfig, *, identity: str, room: str, attributes: dict[str, str]) -> str:
    """The bot's token: ``room`` only, with its first ``attributes`` (no round trip to set them), free to
    change them later."""
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=True, can_subscribe=True, can_update_own_metadata=True
    )
    return (
        api.AccessToken(config.api_key, config.api_secret)
        .with_identity(identity)
        .with_attributes(attributes)
        .with_grants(grants)
        .to_jwt()
    )
