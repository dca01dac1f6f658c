"""The client-under-test interface: what the client cases (SEL, ERR, LIFE) drive, for any client.

An adapter turns one client implementation into a :class:`ClientUnderTest`: it is built from
:class:`ClientSettings`, exposes the six actions of protocol.md §6-8 plus ``say`` (speech into its
microphone) and ``state``, records the client's app events as ``(name, payload dict)`` and raises
:class:`ClientFailure` — this project's error code beside the client's own raw error — when an
action fails. Everything here is JSON-able, so an adapter may live in another process
(:mod:`pytest_estuary.clients.json_lines`).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "APP_EVENTS",
    "CAPABILITIES",
    "LIVEKIT_LIBRARY_ENV",
    "ClientEvent",
    "ClientFailure",
    "ClientInfo",
    "ClientSettings",
    "ClientState",
    "ClientUnderTest",
    "Unsupported",
]

# Set in a shim's environment to "missing" or "broken": the shim must run its client with the LiveKit
# library unimportable or failing to load (it declares the "livekit_library" capability if it can).
LIVEKIT_LIBRARY_ENV = "ESTUARY_CLIENT_LIVEKIT_LIBRARY"
LiveKitLibrary = Literal["present", "missing", "broken"]
Microphone = Literal["synthetic", "unavailable"]

# The app events a client reports, by this project's names (protocol.md §8 and the server's events).
APP_EVENTS = frozenset(
    {
        "connected",
        "disconnected",
        "stt_response",
        "bot_response",
        "livekit_connected",
        "livekit_disconnected",
        "voice_timeout",
        "session_timeout",
    }
)
# What a client may be unable to do; a case that needs a missing one is SKIPPED with the reason.
CAPABILITIES = frozenset(
    {
        "livekit_library",  # run with livekit.rtc missing or broken (SEL-1, SEL-2, ERR-1)
        "unavailable_microphone",  # a microphone that cannot be opened (ERR-4)
        "task_count",  # state() reports the client's running tasks (ERR-7)
        "reconnect_setting",  # automatic reconnect can be switched on (LIFE-5)
        "observable_transport",  # the client itself tells the app its transport (SEL-6); without it the
        # adapter may still learn the transport (to run the other cases) from the client's internals
    }
)


@dataclass(frozen=True)
class ClientSettings:
    """How the harness wants a client built. Timeouts in seconds; an adapter that cannot honour a
    setting raises :class:`Unsupported` naming it."""

    server_url: str
    api_key: str = field(repr=False)
    character_id: str
    player_id: str
    voice_transport: str = "auto"  # deliberately any string: SEL-4 passes an unknown one
    token_timeout: float = 10.0
    ready_timeout: float = 5.0
    connect_timeout: float = 10.0
    microphone: Microphone = "synthetic"
    livekit_library: LiveKitLibrary = "present"
    reconnect: bool = False

    def needs(self) -> dict[str, str]:
        """The capabilities these settings ask of a client: capability → what it is for."""
        wanted = {
            "livekit_library": (self.livekit_library != "present", f"a LiveKit library that is {self.livekit_library}"),
            "unavailable_microphone": (self.microphone == "unavailable", "a microphone that cannot be opened"),
            "reconnect_setting": (self.reconnect, "automatic reconnect switched on"),
        }
        return {capability: what for capability, (asked, what) in wanted.items() if asked}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown client settings {unknown}; expected some of {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class ClientInfo:
    """Who is under test: shown in the report and the matrix."""

    name: str
    version: str
    capabilities: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "capabilities": sorted(self.capabilities)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientInfo:
        return cls(str(data["name"]), str(data["version"]), frozenset(data.get("capabilities", ())))


@dataclass(frozen=True)
class ClientState:
    """What the client says about itself now. ``tasks`` is None when the client cannot count them."""

    transport: str | None
    room: str | None
    voice_active: bool
    muted: bool
    input_open: bool
    tasks: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientState:
        tasks = data.get("tasks")
        return cls(
            transport=data.get("transport"),
            room=data.get("room"),
            voice_active=bool(data.get("voice_active")),
            muted=bool(data.get("muted")),
            input_open=bool(data.get("input_open")),
            tasks=int(tasks) if tasks is not None else None,
        )


@dataclass(frozen=True)
class ClientEvent:
    t: float  # time.monotonic() when the harness received it
    name: str
    payload: dict[str, Any]


class ClientFailure(Exception):
    """An action of the client failed.

    ``code`` is the client's error in this project's codes (protocol.md §7), or None when the client
    raised something that is not one of its documented errors (e.g. a raw LiveKit exception);
    ``raw`` names what it raised; ``cause`` describes the error's ``__cause__`` (None: none kept).
    """

    def __init__(self, code: str | None, message: str, *, raw: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.raw, self.cause = code, message, raw, cause

    def __str__(self) -> str:
        return f"{self.code or 'no error code'}: {self.message} (raised {self.raw})"

    def __repr__(self) -> str:
        return f"<{self}>"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "raw": self.raw, "cause": self.cause}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientFailure:
        message = str(data.get("message", ""))
        return cls(data.get("code"), message, raw=str(data.get("raw", "?")), cause=data.get("cause"))


class Unsupported(Exception):
    """The client cannot do what the case needs (a capability or a setting): the case is SKIPPED."""


class ClientUnderTest(ABC):
    """One client instance under test. Subclasses implement the actions; events and warnings are
    recorded here (``record_event``, ``record_warning``) and awaited with :meth:`wait_for`."""

    info: ClientInfo

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.events: list[ClientEvent] = []
        self.warnings: list[str] = []  # the client's WARNING (and worse) log lines
        self._changed = asyncio.Event()

    @property
    def player_id(self) -> str:
        return self.settings.player_id

    # --- actions (protocol.md §6-8); each raises ClientFailure when the client reports an error ---
    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def start_voice(self) -> str:
        """Start voice with the configured transport; returns the transport in use."""

    @abstractmethod
    async def stop_voice(self) -> None: ...

    @abstractmethod
    async def toggle_mute(self) -> bool:
        """Flip mute; returns the new ``is_muted``."""

    @abstractmethod
    async def send_text(self, text: str) -> None: ...

    @abstractmethod
    async def say(self, pcm16: bytes, sample_rate: int) -> None:
        """Queue mono PCM16 speech on the client's microphone (returns at once)."""

    @abstractmethod
    async def state(self) -> ClientState: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    async def aclose(self) -> None:
        """Release everything (the harness calls this at teardown, whatever happened)."""
        await self.disconnect()

    # --- what the client reported ---
    def record_event(self, name: str, payload: dict[str, Any] | None = None) -> None:
        self.events.append(ClientEvent(time.monotonic(), name, payload or {}))
        self._changed.set()

    def record_warning(self, message: str) -> None:
        self.warnings.append(message)

    def seen(self, name: str) -> list[dict[str, Any]]:
        return [event.payload for event in self.events if event.name == name]

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], object] | None = None,
        *,
        timeout: float,
        include_past: bool = False,
        after: int | None = None,
    ) -> dict[str, Any]:
        """The payload of the next ``name`` event that matches — next after ``after`` (an index into
        :attr:`events` taken before the action that provokes it: an adapter in another process may
        deliver the event before this wait starts), or any with ``include_past``; TimeoutError
        naming what was awaited and what came instead."""
        start = 0 if include_past else len(self.events) if after is None else after
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[start:]:
                if event.name == name and (predicate is None or predicate(event.payload)):
                    return event.payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                came = [event.name for event in self.events[start:]] or "nothing"
                raise TimeoutError(f"no {name} event from the client within {timeout:g} s; it reported: {came}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
