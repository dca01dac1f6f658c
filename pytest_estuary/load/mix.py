"""``--transport-mix``: which users, in what proportion (``text=1,livekit=2,websocket=0``)."""

from __future__ import annotations

__all__ = ["USER_CLASSES", "parse_mix"]

# kind → the Locust user class that runs it (pytest_estuary.load.locustfile)
USER_CLASSES = {
    "text": "EstuaryTextUser",
    "livekit": "EstuaryLiveKitVoiceUser",
    "websocket": "EstuaryWebSocketVoiceUser",
}


def parse_mix(text: str) -> dict[str, int]:
    """``"text=1,livekit=2"`` → ``{"text": 1, "livekit": 2}``; a kind alone weighs 1. ValueError names
    the part that is wrong and what was expected."""
    mix: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, _, weight = part.partition("=")
        kind = kind.strip()
        if kind not in USER_CLASSES:
            raise ValueError(
                f"--transport-mix: unknown kind {kind!r} in {text!r}; expected some of "
                f"{', '.join(USER_CLASSES)} (e.g. text=1,livekit=2)"
            )
        try:
            value = int(weight) if weight.strip() else 1
        except ValueError:
            value = -1
        if value < 0:
            raise ValueError(f"--transport-mix: weight of {kind!r} must be a whole number >= 0, got {weight!r}")
        mix[kind] = value
    if not any(mix.values()):
        raise ValueError(f"--transport-mix: {text!r} gives no kind a weight above 0")
    return {kind: weight for kind, weight in mix.items() if weight > 0}
