"""The fake server's own tests: ``make_peer(url)``, a bare Socket.IO peer that records every event and
waits boundedly (no client library of ours in between)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
import socketio

NAMESPACE = "/sdk"


class Peer:
    """One python-socketio client in ``/sdk``; ``events`` holds (monotonic time, name, args)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str, tuple[Any, ...]]] = []
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_any, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def _on_any(self, name: str, *args: Any) -> None:
        self.events.append((time.monotonic(), name, args))
        self._changed.set()

    async def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected.set()
        self._changed.set()

    async def connect(self, auth: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        await self.sio.connect(
            self.url, namespaces=[NAMESPACE], transports=["websocket"], auth=auth, headers=headers or {}
        )

    async def session(self, api_key: str, player_id: str = "player", **extra: Any) -> dict[str, Any]:
        await self.connect({"api_key": api_key, "character_id": "c", "player_id": player_id, **extra})
        return await self.wait("session_info")

    async def emit(self, name: str, *args: Any) -> None:
        await self.sio.emit(name, args if len(args) != 1 else args[0], namespace=NAMESPACE)

    def payloads(self, name: str, since: float = 0.0) -> list[Any]:
        return [args[0] if args else None for t, n, args in self.events if n == name and t >= since]

    async def wait(
        self, name: str, *, timeout: float = 5.0, predicate: Callable[[Any], bool] | None = None, since: float = 0.0
    ) -> Any:
        """The payload of the first ``name`` event at or after ``since`` (matching ``predicate``)."""
        deadline = time.monotonic() + timeout
        while True:
            for payload in self.payloads(name, since):
                if predicate is None or predicate(payload):
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(n, str(a)[:80]) for _, n, a in self.events[-8:]]
                raise AssertionError(f"no {name!r} within {timeout:.1f} s; last events: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def text_round_trip(self, text: str = "still there?", timeout: float = 5.0) -> float:
        """Seconds from ``text`` to the final bot_response."""
        start = time.monotonic()
        await self.emit("text", {"text": text, "textOnly": True})
        await self.wait("bot_response", predicate=lambda p: p.get("is_final") is True, since=start, timeout=timeout)
        return time.monotonic() - start

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        http = getattr(self.sio.eio, "http", None)  # left open by a connect the server refused
        if http is not None and not http.closed:
            await http.close()


MakePeer = Callable[[str], Peer]


@pytest_asyncio.fixture
async def make_peer() -> AsyncIterator[MakePeer]:
    """``make_peer(url)``: a new unconnected peer, closed at teardown."""
    made: list[Peer] = []

    def make(url: str) -> Peer:
        made.append(Peer(url))
        return made[-1]

    yield make
    for peer in made:
        await peer.close()


class Voice:
    """A bare livekit.rtc participant in the room a peer's ``livekit_token`` reply names: it publishes
    a microphone (silence until ``say``), hears the bot, and logs the bot's attribute changes."""

    SAMPLE_RATE = 48000

    def __init__(self) -> None:
        from livekit import rtc

        self.rtc = rtc
        self.room = rtc.Room()
        self.source = rtc.AudioSource(self.SAMPLE_RATE, 1)
        self.attributes: list[tuple[float, str, dict[str, str]]] = []  # (time, identity, all attributes)
        self.heard: list[tuple[float, bytes]] = []  # the bot's audio frames
        self.bot_tracks: list[float] = []  # when a bot's audio track was subscribed
        self.bot_publications: list[float] = []  # when a bot published a track (before we subscribe)
        self._queue: list[bytes] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.room.on("participant_attributes_changed", self._on_attributes)
        self.room.on("track_subscribed", self._on_track)
        self.room.on("track_published", self._on_published)

    def _on_published(self, _publication: Any, participant: Any) -> None:
        if participant.identity.startswith("bot-"):
            self.bot_publications.append(time.monotonic())

    def _on_attributes(self, _changed: dict[str, str], participant: Any) -> None:
        self.attributes.append((time.monotonic(), participant.identity, dict(participant.attributes)))

    def _on_track(self, track: Any, _publication: Any, participant: Any) -> None:
        if participant.identity.startswith("bot-") and track.kind == self.rtc.TrackKind.KIND_AUDIO:
            self.bot_tracks.append(time.monotonic())
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track: Any) -> None:
        stream = self.rtc.AudioStream(track, sample_rate=self.SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                self.heard.append((time.monotonic(), bytes(event.frame.data)))
        finally:
            await stream.aclose()

    async def start(self, peer: Peer, timeout: float = 10.0) -> dict[str, Any]:
        """livekit_token, join and publish, livekit_join, livekit_ready; returns the token reply."""
        since = time.monotonic()
        await peer.emit("livekit_token", None)
        reply: dict[str, Any] = await peer.wait("livekit_token", since=since, timeout=timeout)
        await asyncio.wait_for(self.room.connect(reply["url"], reply["token"]), timeout)
        track = self.rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        options = self.rtc.TrackPublishOptions(source=self.rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.ensure_future(self._feed()))
        await peer.emit("livekit_join", {"room": reply["room"]})
        await peer.wait("livekit_ready", since=since, timeout=timeout)
        return reply

    def say(self, pcm16: bytes) -> None:
        """Queue PCM16 mono at 48 kHz on the microphone."""
        self._queue.append(pcm16)

    async def _feed(self) -> None:
        frame_bytes = self.SAMPLE_RATE // 100 * 2
        pending = b""
        while True:
            if not pending and self._queue:
                pending = self._queue.pop(0)
            chunk, pending = pending[:frame_bytes], pending[frame_bytes:]
            chunk = chunk.ljust(frame_bytes, b"\0")
            frame = self.rtc.AudioFrame(chunk, self.SAMPLE_RATE, 1, self.SAMPLE_RATE // 100)
            await self.source.capture_frame(frame)

    def loud_since(self, since: float) -> float:
        """Seconds of bot audio above -40 dBFS heard since ``since``."""
        import numpy as np

        loud = 0
        for t, data in self.heard:
            pcm = np.frombuffer(data, dtype=np.int16).astype(np.float64) / 32767
            if t >= since and pcm.size and np.sqrt(np.mean(pcm**2)) > 0.01:
                loud += pcm.size
        return loud / self.SAMPLE_RATE

    def bot(self) -> Any:
        bots = [p for p in self.room.remote_participants.values() if p.identity.startswith("bot-")]
        return bots[0] if bots else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for step in (self.source.aclose(), self.room.disconnect()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(step, 5.0)


@pytest_asyncio.fixture
async def make_voice() -> AsyncIterator[Callable[[], Voice]]:
    """``make_voice()``: a new LiveKit participant (see Voice), closed at teardown."""
    made: list[Voice] = []

    def make() -> Voice:
        made.append(Voice())
        return made[-1]

    yield make
    for voice in made:
        await voice.close()
