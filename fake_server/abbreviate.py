"""Bounded copies of client payloads for the event log: long strings shown by kind and size.

Whatever a client sends, the copy kept is small: strings over ``LONG`` become
``<base64, 9600 bytes>`` or ``<str, N chars>``, containers keep their first ``ITEMS`` entries,
and nesting stops at ``DEPTH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["NotDecoded", "abbreviate", "approx_size", "short_name", "summarise"]

LONG = 1024  # a LiveKit JWT (~600 characters) stays whole; audio chunks do not
ITEMS = 32
DEPTH = 6
NODES = 256
KEY_LONG = 64
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class NotDecoded:
    """The payload of a packet the server did not decode (too large for who sent it): only its size."""

    size: int

    def __str__(self) -> str:
        return f"<not decoded, {self.size}-byte packet>"


def _string(text: str) -> str:
    if len(text) <= LONG:
        return text
    if len(text) % 4 == 0 and _BASE64.fullmatch(text):
        return f"<base64, {len(text) * 3 // 4 - len(text) + len(text.rstrip('='))} bytes>"
    return f"<str, {len(text)} chars>"


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return f"<dict, {len(value)} keys>"
    if isinstance(value, (list, tuple)):
        return f"<list, {len(value)} items>"
    if isinstance(value, (bytes, bytearray)):
        return f"<bytes, {len(value)} bytes>"
    if isinstance(value, str):
        return _string(value) if len(value) > LONG else f"<str, {len(value)} chars>"
    return f"<{type(value).__name__}>"


def abbreviate(value: Any) -> Any:
    """A bounded copy of a JSON-like value (see the module docstring); at most ``NODES`` nodes in all."""
    budget = [NODES]

    def copy(item: Any, depth: int) -> Any:
        budget[0] -= 1
        if item is None or isinstance(item, (bool, int, float)):
            return item
        if isinstance(item, NotDecoded):
            return str(item)
        if isinstance(item, str):
            return _string(item)
        if budget[0] <= 0 or depth >= DEPTH or not isinstance(item, (dict, list, tuple)):
            return _shape(item)
        if isinstance(item, dict):
            entries = list(item.items())[:ITEMS]
            kept = {_key(k): copy(v, depth + 1) for k, v in entries}
            if len(item) > ITEMS:
                kept["<more>"] = f"{len(item) - ITEMS} more keys"
            return kept
        kept_list = [copy(v, depth + 1) for v in item[:ITEMS]]
        if len(item) > ITEMS:
            kept_list.append(f"<{len(item) - ITEMS} more items>")
        return kept_list

    return copy(value, 0)


def _key(key: Any) -> str:
    text = key if isinstance(key, str) else str(key)
    return text if len(text) <= KEY_LONG else f"<str, {len(text)} chars>"


def short_name(name: Any) -> str:
    """An event name fit for a log line: a client may send any string, or none, as the name."""
    return _key(name) if isinstance(name, str) else f"<{type(name).__name__}>"


def approx_size(value: Any, budget: int = 2000) -> int:
    """Roughly the bytes ``value`` takes as JSON; walks at most ``budget`` nodes (then guesses low)."""
    size, stack, seen = 0, [value], 0
    while stack and seen < budget:
        item = stack.pop()
        seen += 1
        if isinstance(item, dict):
            size += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, (str, bytes, bytearray)):
            size += len(item) + 2
        else:
            size += 8
    return size


def summarise(value: Any) -> str:
    """One line for a payload that is not kept (an unknown event, or one before authentication)."""
    if value is None:
        return "<no argument>"
    if isinstance(value, NotDecoded):
        return str(value)
    if isinstance(value, dict):
        keys = ", ".join(_string(str(k))[:32] for k in list(value)[:8])
        more = ", …" if len(value) > 8 else ""
        return f"<dict, {len(value)} keys ({keys}{more}), ~{approx_size(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return f"<list, {len(value)} items, ~{approx_size(value)} bytes>"
    return _shape(value) if isinstance(value, (str, bytes, bytearray)) else f"<{type(value).__name__}>"
