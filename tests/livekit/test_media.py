"""Real media on the session's livekit-server: a 440 Hz tone crosses the SFU intact."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from pytest_estuary import audio
from pytest_estuary.livekit_server import LiveKitCredentials

RATE = 48000
FRAME_MS = 10
HEARD_FRAMES = 150  # 1.5 s of 10 ms frames
SETTLE_FRAMES = 50  # the first 0.5 s: jitter buffer start-up and Opus warm-up


@pytest.mark.asyncio
async def test_a_published_440_hz_tone_is_received_as_440_hz(
    livekit_server: LiveKitCredentials,
    mint: Callable[..., str],
    rooms: Callable[[], rtc.Room],
    bounded: Callable[..., Awaitable[Any]],
) -> None:
    speaker, listener = rooms(), rooms()
    source = rtc.AudioSource(RATE, 1)
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    def on_track(track: rtc.Track, *_: object) -> None:
        if not subscribed.done():
            subscribed.set_result(track)

    listener.on("track_subscribed", on_track)

    async def play_tone() -> None:
        second = audio.tone(440.0, 1.0, RATE)  # 440 whole cycles: loops without a phase jump
        while True:
            for frame in audio.chunk(second, RATE, FRAME_MS):
                await source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, len(frame)))

    frames: list[audio.PCM16] = []
    player: asyncio.Task[None] | None = None
    stream: rtc.AudioStream | None = None
    try:
        await bounded(speaker.connect(livekit_server.url, mint("tone", "speaker")), 10, "the speaker to join")
        await bounded(listener.connect(livekit_server.url, mint("tone", "listener")), 10, "the listener to join")
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await bounded(
            speaker.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            ),
            10,
            "the tone track to publish",
        )
        player = asyncio.ensure_future(play_tone())
        remote = await bounded(
            subscribed,
            10,
            "the listener to subscribe to the speaker's track",
            seen=lambda: {p.identity: list(p.track_publications) for p in listener.remote_participants.values()},
        )
        stream = rtc.AudioStream(remote, sample_rate=RATE, num_channels=1)

        async def collect(audio_stream: rtc.AudioStream) -> None:
            async for event in audio_stream:
                frames.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
                if len(frames) >= HEARD_FRAMES:
                    return

        await bounded(
            collect(stream), 10, f"{HEARD_FRAMES} audio frames from the SFU", seen=lambda: f"{len(frames)} frames"
        )
    finally:
        if player is not None:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
        if stream is not None:
            await stream.aclose()
        await source.aclose()

    received = audio.concat(*frames[SETTLE_FRAMES:])
    found = audio.dominant_frequency(received, RATE)
    level = audio.level_dbfs(received)
    sent = audio.level_dbfs(audio.tone(440.0, 1.0, RATE))  # about -13.5 dBFS
    assert abs(found - 440.0) <= 10.0, (
        f"dominant frequency {found:.1f} Hz, expected 440 ± 10 Hz (level {level:.1f} dBFS)"
    )
    # Opus keeps a steady tone's level within a dB or two; silence and comfort noise sit below -60 dBFS.
    assert level > sent - 6.0, f"level {level:.1f} dBFS, expected within 6 dB of the {sent:.1f} dBFS sent"
