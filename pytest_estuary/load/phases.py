"""The phases a load session reports, each with the requirement that bounds it.

One home for the bounds: a phase's ``bound`` is its requirement's (LK-1's 10 s, LK-5's 5 s, WS-1's
10 s, LK-9's 5 s, CONN-4's 15 s); a phase the protocol does not bound takes the suite's default
timeout (10 s), as a conformance case's precondition step does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMEOUT", "ERROR_ID", "PHASES", "Phase", "phase"]

DEFAULT_TIMEOUT = 10.0  # --estuary-timeout's default: a step the protocol does not bound
ERROR_ID = "ERROR"  # a failure that is no protocol observation (the harness or the network broke)


@dataclass(frozen=True)
class Phase:
    """A step of a load session: its Locust request ``name``, its requirement ID and bound (s)."""

    name: str
    requirement: str
    bound: float
    what: str
    own_bound: bool = True  # False: the protocol sets none; --estuary-timeout applies

    def limit(self, timeout: float = DEFAULT_TIMEOUT) -> float:
        """The bound in force: the requirement's, or ``timeout`` (--estuary-timeout) when it sets none."""
        return self.bound if self.own_bound else timeout


PHASES: dict[str, Phase] = {
    p.name: p
    for p in (
        Phase("connect", "CONN-4", 15.0, "connect → session_info"),
        Phase("text_reply", "TEXT-1", DEFAULT_TIMEOUT, "text → final bot_response", own_bound=False),
        Phase("livekit_token", "LK-1", 10.0, "livekit_token → its reply"),
        Phase("room_connect", "LK-2", 10.0, "LiveKit room connect with the token"),
        Phase("publish", "LK-2", 10.0, "microphone track published"),
        Phase("livekit_ready", "LK-5", 5.0, "livekit_join → livekit_ready"),
        Phase("bot_track", "LK-6", 5.0, "livekit_ready → bot audio track flowing"),
        Phase("voice_started", "WS-1", 10.0, "start_voice → voice_started"),
        Phase("stt_final", "LK-7", DEFAULT_TIMEOUT, "speech starts → final stt_response", own_bound=False),
        Phase(
            "bot_response_final", "LK-8", DEFAULT_TIMEOUT, "final stt_response → final bot_response", own_bound=False
        ),
        Phase("bot_audio", "LK-8", DEFAULT_TIMEOUT, "final stt_response → first bot audio heard", own_bound=False),
        Phase("stop", "LK-9", 5.0, "stop_voice → room left (livekit_leave) or voice_stopped"),
        Phase("disconnect", ERROR_ID, 5.0, "disconnect → socket closed"),
    )
}

# On WebSocket voice the same steps are owned by the WS requirements.
_WEBSOCKET = {"stt_final": "WS-2", "bot_response_final": "WS-4", "bot_audio": "WS-4", "stop": "WS-3"}


def phase(name: str, transport: str | None = None) -> Phase:
    """The phase ``name``, with the requirement that owns it on ``transport`` ("livekit"/"websocket")."""
    found = PHASES[name]
    if transport == "websocket" and name in _WEBSOCKET:
        return Phase(found.name, _WEBSOCKET[name], found.bound, found.what, found.own_bound)
    return found
