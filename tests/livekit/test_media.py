"""Real media on the session's livekit-server: a 440 Hz tone crosses the SFU intact."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import api, rtc

from pytest_estuary import audio
from pytest_estuary.livekit_server import LiveKitCredentials

pytestmark = pytest.mark.asyncio
RATE = 48000
FRAME = RATE // 100


def token(creds: LiveKitCredentials, identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(creds.api_key, creds.api_secret).with_identity(identity).with_grants(grants).to_jwt()


async def test_a_published_440_hz_tone_is_received_as_440_hz(livekit_server: LiveKitCredentials) -> None:
    speaker, listener = rtc.Room(), rtc.Room()
    source = rtc.AudioSource(RATE, 1)
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    def on_track(track: rtc.Track, *_: object) -> None:
        if not subscribed.done():
            subscribed.set_result(track)

    listener.on("track_subscribed", on_track)

    async def play_tone() -> None:
        second = audio.tone(440.0, 1.0, RATE)  # 440 whole cycles: loops without a phase jump
        while True:
            for frame in audio.chunk(second, RATE, 10):
                await source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, FRAME))

    player: asyncio.Task[None] | None = None
    stream: rtc.AudioStream | None = None
    try:
        await asyncio.wait_for(speaker.connect(livekit_server.url, token(livekit_server, "speaker", "tone")), 10)
        await asyncio.wait_for(listener.connect(livekit_server.url, token(livekit_server, "listener", "tone")), 10)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await speaker.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        player = asyncio.ensure_future(play_tone())
        remote = await asyncio.wait_for(subscribed, 10)
        stream = rtc.AudioStream(remote, sample_rate=RATE, num_channels=1)
        frames: list[audio.PCM16] = []

        async def collect() -> None:
            async for event in stream:  # type: ignore[union-attr]
                frames.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
                if len(frames) >= 150:  # 1.5 s
                    return

        await asyncio.wait_for(collect(), 10)
        received = audio.concat(*frames[50:])  # past the jitter buffer's start-up
        found = audio.dominant_frequency(received, RATE)
        assert abs(found - 440.0) <= 10.0, f"dominant frequency {found:.1f} Hz, expected 440 ± 10 Hz"
        assert audio.level_dbfs(received) > -30.0, f"level {audio.level_dbfs(received):.1f} dBFS: near silence"
    finally:
        if player is not None:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
        if stream is not None:
            await stream.aclose()
        await source.aclose()
        await speaker.disconnect()
        await listener.disconnect()
