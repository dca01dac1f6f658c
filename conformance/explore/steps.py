"""A finding's sequence as numbered steps: what each step sent and received, abbreviated, secrets cut.

The shape is the report's ``STEPS_PROPERTY`` contract (pytest_estuary/report.py, schema 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from conformance.peer import _hide_tokens, _redact

__all__ = ["NO_ARGUMENT_TEXT", "Entry", "Step", "abbreviate", "render_steps"]

NO_ARGUMENT_TEXT = "<no argument>"
PAYLOAD_CHARS = 160  # one line of a step in the plain-text rendering
Direction = Literal["sent", "received", "note"]


def abbreviate(args: tuple[Any, ...]) -> Any:
    """The argument(s) of an event fit for a report: keys and tokens cut, audio and long text shortened."""
    if not args:
        return NO_ARGUMENT_TEXT
    value = _redact(args[0] if len(args) == 1 else list(args))
    return _scrub(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _hide_tokens(str(value))
    return value


@dataclass(frozen=True)
class Entry:
    """One event of a step: seconds since the sequence began, direction, peer, event, payload."""

    t: float
    dir: Direction
    peer: str
    event: str
    payload: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "dir": self.dir, "peer": self.peer, "event": self.event, "payload": self.payload}


@dataclass
class Step:
    """One rule the explorer ran, and the events sent and received while it ran (its checks included)."""

    n: int
    action: str
    t: float
    sent: list[Entry] = field(default_factory=list)
    received: list[Entry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "action": self.action,
            "t": round(self.t, 3),
            "sent": [e.to_json() for e in self.sent],
            "received": [e.to_json() for e in self.received],
        }


def _partial(entry: dict[str, Any]) -> bool:
    """A chunk that is not the last of its stream: the text rendering leaves it out."""
    payload = entry.get("payload")
    return (
        entry.get("event") in ("bot_response", "bot_voice")
        and isinstance(payload, dict)
        and payload.get("is_final") is not True
    )


def render_steps(steps: list[dict[str, Any]], replay: str | None = None) -> str:
    """Plain text for the failure reason (the Markdown report shows it as is)."""
    lines: list[str] = []
    for step in steps:
        lines.append(f"{step['n']}. [{step['t']:.3f} s] {step['action']}")
        entries = sorted([*step.get("sent", []), *step.get("received", [])], key=lambda e: e["t"])
        folded = sum(_partial(e) for e in entries)
        if folded:
            lines.append(
                f"     ({folded} partial bot_response / bot_voice chunk(s) not shown; the JSON report has them)"
            )
        for entry in (e for e in entries if not _partial(e)):
            arrow = {"sent": "->", "received": "<-"}.get(entry["dir"], "!!")
            payload = json.dumps(entry["payload"], ensure_ascii=False, default=str)
            if len(payload) > PAYLOAD_CHARS:
                payload = payload[: PAYLOAD_CHARS - 1] + "…"
            lines.append(f"     {entry['t']:8.3f} {arrow} {entry['peer']} {entry['event']} {payload}")
    if replay:
        lines.append(f"Replay: {replay}")
    return "\n".join(lines)
