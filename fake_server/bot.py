"""The bot participant: joins the client's LiveKit room, listens to it, speaks on its own track."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import numpy as np
from livekit import rtc

from fake_server.stt import SttEvent, UtteranceDetector
from fake_server.tokens import MESSAGE_ATTRIBUTE, STATE_ATTRIBUTE
from fake_server.voice_synth import frames
from pytest_estuary.client.rtc_connect import connect_within

__all__ = ["Bot"]

log = logging.getLogger("fake_server.bot")
SAMPLE_RATE = 48000
FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms


class Bot:
    """A bot in a room; ``on_speech`` is called with each utterance event heard from ``listen_to``.

    A standby bot joins with no one to listen to, and is given its client by :meth:`serve`.
    """

    def __init__(
        self,
        *,
        identity: str,
        listen_to: str | None,
        on_speech: Callable[[SttEvent], Awaitable[None]] | None,
        pitch: float,
    ) -> None:
        self.identity = identity
        self.listen_to = listen_to
        self.on_speech = on_speech  # None: the bot is deaf
        self.pitch = pitch
        self.room = rtc.Room()
        self.source = rtc.AudioSource(SAMPLE_RATE, 1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._speaking = asyncio.Lock()
        self._attributing = asyncio.Lock()  # one set_attributes at a time: concurrent ones get lost
        self.room.on("track_subscribed", self._on_track)

    async def join(self, url: str, token: str, timeout: float = 10.0) -> None:
        """Connect and publish the voice track: after this the bot is heard-able (LK-6).

        ``token`` (tokens.bot_token) already sets ``estuary.state`` to idle: no round trip for it here.
        """
        await connect_within(self.room, url, token, timeout)
        track = rtc.LocalAudioTrack.create_audio_track("bot-voice", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)

    def serve(
        self, listen_to: str, on_speech: Callable[[SttEvent], Awaitable[None]] | None, attributes: dict[str, str]
    ) -> None:
        """Listen to ``listen_to`` from now on (tracks already subscribed too); publish ``attributes``
        in the background: they are informational (LK-10), livekit_ready must not wait for them."""
        self.listen_to, self.on_speech = listen_to, on_speech
        participant = self.room.remote_participants.get(listen_to)
        for publication in participant.track_publications.values() if participant else ():
            if publication.track is not None and publication.subscribed:
                self._on_track(publication.track, publication, participant)  # type: ignore[arg-type]
        self._spawn(self._set_attributes(attributes))

    def _on_track(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if self.on_speech is None or track.kind != rtc.TrackKind.KIND_AUDIO or participant.identity != self.listen_to:
            return
        self._spawn(self._listen(track))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self, track: rtc.Track) -> None:
        detector = UtteranceDetector(SAMPLE_RATE)
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16)
                for heard in detector.feed(pcm):
                    if self.on_speech is not None:
                        await self.on_speech(heard)
        finally:
            await stream.aclose()

    async def speak(self, text: str, message_id: str = "") -> None:
        """Say ``text`` on the voice track in real time; meanwhile ``estuary.state`` is speaking and
        ``estuary.message_id`` names the reply, then idle and "" (which removes it)."""
        async with self._speaking:
            # The voice does not wait for the attributes' round trip to the SFU: they go out beside
            # its first frames (mouth to ear is what a user feels; LK-10 attributes are INFO).
            showing = asyncio.ensure_future(
                self._set_attributes({STATE_ATTRIBUTE: "speaking", MESSAGE_ATTRIBUTE: message_id})
            )
            try:
                for frame in frames(text, SAMPLE_RATE, FRAME_SAMPLES, self.pitch):
                    if len(frame) == FRAME_SAMPLES:  # a short last frame is a few ms of the ramp's end
                        await self.source.capture_frame(rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES))
                await self.source.wait_for_playout()
            finally:
                await asyncio.gather(showing, return_exceptions=True)  # speaking is shown before idle
                await self._set_attributes({STATE_ATTRIBUTE: "idle", MESSAGE_ATTRIBUTE: ""})

    async def _set_attributes(self, attributes: dict[str, str]) -> None:
        async with self._attributing:
            if not self.room.isconnected():
                return
            try:
                await self.room.local_participant.set_attributes(attributes)
            except Exception as exc:  # attributes are INFO (LK-10): never fatal
                log.warning("bot %s could not set its attributes: %s", self.identity, exc)

    async def leave(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.source.aclose()
        if self.room.isconnected():
            with contextlib.suppress(Exception):
                await self.room.disconnect()
