"""Per-socket session state: who it is, and what voice it has open."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fake_server.auth import DEFAULT_SAMPLE_RATE
from fake_server.stt import UtteranceDetector

if TYPE_CHECKING:
    from fake_server.bot_host import RemoteBot

__all__ = ["Session", "SessionView", "StrayBot", "WarmBot"]

log = logging.getLogger("fake_server.sessions")

Voice = Literal["livekit", "websocket"]
RECENT_REPLIES = 32  # message ids a session remembers having been sent (a bound: sessions may be long)


@dataclass(frozen=True)
class SessionView:
    """What tests may read about a session."""

    session_id: str | None
    player_id: str | None
    character_id: str | None
    room: str | None
    voice: Voice | None


@dataclass(frozen=True)
class WarmBot:
    """A bot joining ``room`` before the client asked it to (``livekit_join``)."""

    room: str
    joining: asyncio.Task[RemoteBot]

    def __post_init__(self) -> None:
        self.joining.add_done_callback(self._report)

    def _report(self, joining: asyncio.Task[RemoteBot]) -> None:
        """Every failed join is logged here, whether or not anyone still waits for it."""
        if not joining.cancelled() and (error := joining.exception()) is not None:
            log.warning("a bot could not join room %s: %s", self.room, error)

    async def joined(self) -> RemoteBot:
        """The bot once its join has ended; raises what the join raised (the bot then left by itself).

        Shielded: whoever waits may give up, the join still runs out and its bot is still discarded.
        """
        return await asyncio.shield(self.joining)

    async def settled(self) -> RemoteBot | None:
        """Like :meth:`joined`, with None for a failed join."""
        try:
            return await self.joined()
        except Exception:
            return None


@dataclass(frozen=True)
class StrayBot:
    """A bot the server lost track of (a sequence-only misbehaviour): it keeps ``room`` alive until
    the session ends."""

    room: str
    bot: RemoteBot | WarmBot


@dataclass(eq=False)
class Session:
    sid: str
    session_id: str | None = None
    conversation_id: str | None = None
    character_id: str | None = None
    player_id: str | None = None
    audio_sample_rate: int = DEFAULT_SAMPLE_RATE
    voice: Voice | None = None
    token_room: str | None = None  # the room of the last livekit_token reply
    room: str | None = None  # the room voice is live in
    bot: RemoteBot | None = None  # the bot of ``room``
    warm_bot: WarmBot | None = None  # joining ``token_room`` ahead of livekit_join (LK-11)
    detector: UtteranceDetector | None = None
    utterances: int = 0
    messages: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    voice_activity: float = field(default_factory=time.monotonic)
    voice_released_at: float = float("-inf")
    noise: int = 0  # unknown or unauthenticated events received (fake_server.namespace)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # State only the sequence-only misbehaviours read (fake_server.misbehaviour)
    streaming: int = 0  # replies whose bot_response chunks are being sent
    interrupt_armed: bool = False  # stale_interrupt_cuts_next_reply
    recent_replies: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_REPLIES))
    interrupted: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_REPLIES))
    strays: list[StrayBot] = field(default_factory=list)
    speaking: asyncio.Lock = field(default_factory=asyncio.Lock)  # one reply voiced at a time (queue)

    @property
    def authenticated(self) -> bool:
        return self.session_id is not None

    def touch(self) -> None:
        self.last_activity = time.monotonic()
        if self.voice is not None:
            self.voice_activity = self.last_activity

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine owned by this session; it is cancelled when the session ends."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def view(self) -> SessionView:
        return SessionView(self.session_id, self.player_id, self.character_id, self.room, self.voice)
