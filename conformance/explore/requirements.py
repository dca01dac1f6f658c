"""The requirements the explorer can break: one EXPLORE case each (no imports, the catalogue reads it)."""

from __future__ import annotations

__all__ = ["EXPLORED", "LEVELS"]

# ID → the requirement as protocol.md states it, in one sentence (the case's text in the report).
EXPLORED: dict[str, str] = {
    "WIRE-1": "Every server event, whatever sequence led to it, carries exactly one argument, a JSON object.",
    "WIRE-2": "Every documented client event form is accepted in any sequence: no `error`, no hang-up.",
    "WIRE-3": "A malformed payload or an unknown event, in any sequence, gets `error` naming the event "
    "and never closes the connection.",
    "TEXT-1": "Text is answered within the bound by one `bot_response` stream (chunk_index 0,1,2…, exactly one "
    "final chunk, the last), and only a socket that asked gets one.",
    "WS-1": "Every `start_voice` gets `voice_started` or `voice_error` within 10 s, and none comes unasked.",
    "WS-3": "Every `stop_voice` gets `voice_stopped` within the client's leave bound (5 s), and none comes unasked.",
    "LK-5": "Every `livekit_join` after a token gets `livekit_ready` for the token's room (or `livekit_error`) "
    "within 5 s, and no `livekit_ready` comes without a join.",
    "LK-9": "After `livekit_leave` every room the session was given is deleted within 5 s (the bot gone, "
    "the explorer's room connection ended), and a new `livekit_token` ends the rooms of the earlier ones "
    "within 5 s too (one live room per session).",
}
LEVELS: dict[str, str] = dict.fromkeys(EXPLORED, "MUST")
