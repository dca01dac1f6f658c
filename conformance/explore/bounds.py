"""Every bound the explorer waits: taken from the protocol's homes (the client's timeouts, the
conformance constants, the suite's reply timeout), never chosen here."""

from __future__ import annotations

from dataclasses import dataclass, fields

from conformance.handshake import READY_BOUND, TOKEN_BOUND
from conformance.websocket_voice import START_BOUND
from pytest_estuary.client.config import ClientConfig

__all__ = ["Bounds"]


def _client_default(name: str) -> float:
    default = next(f.default for f in fields(ClientConfig) if f.name == name)
    assert isinstance(default, float)
    return default


@dataclass(frozen=True)
class Bounds:
    """Seconds per requirement; ``reply`` is the suite's ``--estuary-timeout``."""

    reply: float  # TEXT-1 / WIRE-3: a reply or an error, as every conformance case waits for one
    session: float  # CONN-4: session_info (a step: the suite's timeout at most)
    token: float  # LK-1: the livekit_token reply (a step: the suite's timeout at most)
    ready: float = READY_BOUND  # LK-5
    voice_start: float = START_BOUND  # WS-1
    voice_stop: float = _client_default("leave_timeout")  # WS-3: the client's bound for each stop step
    leave: float = _client_default("leave_timeout")  # LK-9: room and bot gone after livekit_leave

    @classmethod
    def for_timeout(cls, timeout: float) -> Bounds:
        return cls(
            reply=timeout,
            session=min(_client_default("session_info_timeout"), timeout),
            token=min(TOKEN_BOUND, timeout),
        )

    def longest(self) -> float:
        return max(self.reply, self.session, self.token, self.ready, self.voice_start, self.voice_stop, self.leave)
