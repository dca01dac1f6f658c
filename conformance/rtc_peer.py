"""A raw LiveKit participant for black-box cases: joins with a server's token, speaks, listens.

It has none of the client's rules, so cases can see what the server's room really holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
import wave
from pathlib import Path

import numpy as np
from livekit import rtc

from conformance import timeline
from pytest_estuary import audio
from pytest_estuary.client.livekit_voice import install_log_redaction
from pytest_estuary.client.rtc_connect import connect_within
from pytest_estuary.tls import ssl_context, verify_once
from pytest_estuary.waiting import WaitTimeout, wait_until

__all__ = ["RtcPeer", "read_wav"]

SAMPLE_RATE = 48000
FRAME_MS = 10


def read_wav(path: Path, sample_rate: int = SAMPLE_RATE) -> audio.PCM16:
    """A mono PCM16 WAV file, resampled (linearly) to ``sample_rate``."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(
                f"{path}: expected mono 16-bit PCM, got {wav.getnchannels()} ch x {wav.getsampwidth() * 8} bit"
            )
        rate = wav.getframerate()
        pcm = audio.from_bytes(wav.readframes(wav.getnframes()))
    if rate == sample_rate:
        return pcm
    positions = np.arange(round(len(pcm) * sample_rate / rate)) * rate / sample_rate
    return np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)


_contexts: dict[str | None, ssl.SSLContext] = {}


def _trust() -> ssl.SSLContext:
    """What livekit.rtc trusts: the system store or SSL_CERT_FILE (the plugin adds --estuary-ca-file there)."""
    key = os.environ.get("SSL_CERT_FILE")
    if key not in _contexts:
        _contexts[key] = ssl_context()
    return _contexts[key]


class RtcPeer:
    """One ``livekit.rtc`` participant; ``say()`` plays audio on its microphone track."""

    def __init__(self) -> None:
        install_log_redaction()  # livekit.rtc logs a refused token whole
        self.room = rtc.Room()
        self.source = rtc.AudioSource(SAMPLE_RATE, 1)
        self.heard: dict[str, list[audio.PCM16]] = {}
        self.disconnected_at: float | None = None
        self._queue: asyncio.Queue[audio.PCM16] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.room.on("track_subscribed", self._on_track)
        self.room.on("disconnected", self._on_disconnected)
        self.room.on("reconnecting", self._on_reconnecting)
        self.room.on("reconnected", lambda: self.changes.append((time.monotonic(), "reconnected")))
        self.changes: list[tuple[float, str]] = []  # (monotonic, what): a failure's Actual shows them
        self._leaving: asyncio.Task[None] | None = None
        timeline.register(self)

    def _on_disconnected(self, *_args: object) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()

    def _on_reconnecting(self) -> None:
        """The connection the server gave us has ended: we do not resume it.

        A deleted room's media can close before its leave message arrives over signalling (through
        a TLS proxy, often), and livekit.rtc then rejoins, which creates the room again (LiveKit
        makes rooms on join). That hid the deletion from LK-9 and left a room behind.
        """
        self.changes.append((time.monotonic(), "reconnecting"))
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
            self._leaving = asyncio.ensure_future(self.room.disconnect())

    def _on_track(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._tasks.append(asyncio.ensure_future(self._record(track, participant.identity)))

    async def _record(self, track: rtc.Track, identity: str) -> None:
        frames = self.heard.setdefault(identity, [])
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                frames.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
        finally:
            await stream.aclose()

    async def join(self, url: str, token: str, *, timeout: float) -> None:
        if url.startswith("wss://"):  # a certificate problem in words, not after livekit.rtc's retries
            problem = await verify_once(url, _trust(), what="the LiveKit server", timeout=timeout)
            if problem is not None:
                raise ConnectionError(problem)
        await connect_within(self.room, url, token, timeout)

    async def publish_microphone(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.ensure_future(self._feed()))

    async def _feed(self) -> None:
        """Real-time microphone: queued speech, else silence, one 10 ms frame at a time."""
        samples = SAMPLE_RATE * FRAME_MS // 1000
        quiet = np.zeros(samples, dtype=np.int16)
        pending: list[audio.PCM16] = []
        while True:
            if not pending and not self._queue.empty():
                pending = list(audio.chunk(self._queue.get_nowait(), SAMPLE_RATE, FRAME_MS))
            frame = pending.pop(0) if pending else quiet
            await self.source.capture_frame(rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, samples))

    def say(self, pcm: audio.PCM16) -> float:
        """Queue ``pcm`` (48 kHz) on the microphone; returns its duration in seconds."""
        self._queue.put_nowait(pcm)
        return len(pcm) / SAMPLE_RATE

    def audio_from(self, identity: str) -> audio.PCM16:
        return audio.concat(*self.heard.get(identity, []))

    def bots(self) -> list[rtc.RemoteParticipant]:
        return [p for p in self.room.remote_participants.values() if p.identity.startswith("bot-")]

    async def wait_for_bot_track(self, *, timeout: float) -> rtc.RemoteParticipant:
        """The first ``bot-*`` participant that publishes an audio track we subscribed to."""

        def subscribed_bot() -> rtc.RemoteParticipant | None:
            return next((bot for bot in self.bots() if bot.identity in self.heard), None)

        try:
            bot: rtc.RemoteParticipant | None = await wait_until(
                subscribed_bot, timeout=timeout, awaited="a bot-* audio track"
            )
        except WaitTimeout:
            seen = {p.identity: len(p.track_publications) for p in self.room.remote_participants.values()}
            raise AssertionError(
                f"Expected: a bot-* participant publishing audio within {timeout:.1f} s\n"
                f"Actual:   participants (identity: publications) {seen}"
            ) from None
        assert bot is not None  # wait_until returns only a truthy value
        return bot

    async def wait_disconnected(self, *, timeout: float) -> float:
        """Seconds until the room connection ended (raises with the state seen otherwise)."""
        start = time.monotonic()
        try:
            ended: float | None = await wait_until(
                lambda: self.disconnected_at, timeout=timeout, awaited="the room connection's end"
            )
        except WaitTimeout:
            raise AssertionError(
                f"Expected: the room connection to end within {timeout:.1f} s\n"
                f"Actual:   still {self.room.connection_state}, participants "
                f"{sorted(self.room.remote_participants)}"
                + "".join(f"; {what} {at - start:+.2f} s" for at, what in self.changes)
            ) from None
        assert ended is not None  # wait_until returns only a truthy value
        return ended - start

    async def close(self, timeout: float = 5.0) -> None:
        """Stop feeding and recording, leave the room; each step bounded so teardown never hangs."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        self._tasks.clear()
        if self._leaving is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._leaving, timeout)
        for step in (self.source.aclose(), self.room.disconnect()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(step, timeout)
