"""The documented ways the fake server can be told to break the protocol, one field each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Misbehaviour", "MisbehaviourError"]

TOKEN_REPLY_FIELDS = ("token", "url", "room")


class MisbehaviourError(ValueError):
    """A misbehaviour setting with an unknown name or a value of the wrong kind."""


@dataclass
class Misbehaviour:
    """All off by default. Field names are also the JSON keys of the control API."""

    livekit_disabled: bool = False  # never answer livekit_token
    livekit_refused: str | None = None  # answer livekit_token / livekit_join with livekit_error {error}
    delay: dict[str, float] = field(default_factory=dict)  # client event → seconds before the reply
    token_unreachable_url: bool = False  # url where nothing listens
    token_wrong_secret: bool = False  # token signed with a secret the LiveKit server doesn't know
    token_expired: bool = False  # exp two minutes in the past (beyond the server's 60 s leeway)
    token_other_room: bool = False  # token granted for a room other than the announced one
    token_reply_missing: str | None = None  # omit "token", "url" or "room" from the reply
    no_livekit_ready: bool = False
    ready_wrong_room: bool = False
    no_bot: bool = False
    bot_deaf: bool = False  # the bot never listens: no stt_response
    bot_silent: bool = False  # the bot never speaks on its track
    no_argument_events: bool = False  # emit events with no argument (breaks WIRE-1)
    auth_always_fails: bool = False
    drop_socket_at: str | None = None  # disconnect when this client event arrives
    # Sequence-only defects: every event on its own is handled right; a sequence of them is not.
    leave_mid_handshake_keeps_room: bool = False  # livekit_leave between token and join: bot + room stay (LK-9)
    stale_interrupt_cuts_next_reply: bool = False  # client_interrupt with no reply streaming cuts the next (TEXT-1)
    playback_complete_after_interrupt_kills: bool = False  # ack of an interrupted reply closes the socket (WIRE-2)
    second_socket_steals_replies: bool = False  # replies go to the player's newest socket, not the asker (TEXT-1)
    join_twice_two_bots: bool = False  # livekit_join again: a 2nd bot; leave removes one, the room stays (LK-9)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def updated(self, settings: dict[str, Any]) -> Misbehaviour:
        """A copy with ``settings`` applied; every name and value is checked."""
        values = asdict(self)
        for name, value in settings.items():
            if name not in values:
                raise MisbehaviourError(
                    f"unknown misbehaviour setting {name!r}; known settings: {', '.join(self.names())}"
                )
            values[name] = _checked(name, value, values[name])
        return Misbehaviour(**values)

    def active(self) -> dict[str, Any]:
        defaults = asdict(Misbehaviour())
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}


def _checked(name: str, value: Any, current: Any) -> Any:
    if name == "delay":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        ):
            raise MisbehaviourError(f"delay must be an object of event name → seconds ≥ 0, got {value!r}")
        return {k: float(v) for k, v in value.items()}
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise MisbehaviourError(f"{name} must be true or false, got {value!r}")
        return value
    if value is not None and not isinstance(value, str):
        raise MisbehaviourError(f"{name} must be a string or null, got {value!r}")
    if name == "token_reply_missing" and value not in (None, *TOKEN_REPLY_FIELDS):
        raise MisbehaviourError(f"token_reply_missing must be one of {TOKEN_REPLY_FIELDS} or null, got {value!r}")
    return value
