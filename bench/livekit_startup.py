"""Benchmark: livekit-server cold start, attach, and room join → first audio frame. Prints JSON.

Run inside the namespace: scripts/isolated_run.sh .venv/bin/python bench/livekit_startup.py
Targets (design.md): cold start ≤ 1.5 s; attach ≤ 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time

import numpy as np
from livekit import api, rtc

from pytest_estuary import audio
from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer

RUNS = 7
RATE = 48000


def cold_start() -> float:
    """LiveKitServer.start() on a fresh config and free ports, until GET / answers 200."""
    start = time.perf_counter()
    manager = LiveKitServer()
    manager.start()
    elapsed = time.perf_counter() - start
    manager.stop()
    return elapsed


def attach(creds: LiveKitCredentials) -> float:
    start = time.perf_counter()
    with LiveKitServer(url=creds.url, api_key=creds.api_key, api_secret=creds.api_secret):
        return time.perf_counter() - start


def token(creds: LiveKitCredentials, identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(creds.api_key, creds.api_secret).with_identity(identity).with_grants(grants).to_jwt()


async def join_to_first_frame(creds: LiveKitCredentials, run: int) -> float:
    """Listener waiting in the room; time from the speaker's connect() to the first frame heard."""
    room_name = f"bench-{run}"
    listener, speaker = rtc.Room(), rtc.Room()
    heard: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def listen(track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        async for event in stream:
            if np.abs(np.frombuffer(event.frame.data, dtype=np.int16)).max() > 1000 and not heard.done():
                heard.set_result(time.perf_counter())
                break
        await stream.aclose()

    tasks: list[asyncio.Task[None]] = []
    listener.on("track_subscribed", lambda track, *_: tasks.append(asyncio.ensure_future(listen(track))))
    await asyncio.wait_for(listener.connect(creds.url, token(creds, "listener", room_name)), 10)
    source = rtc.AudioSource(RATE, 1)
    tone = audio.tone(440.0, 1.0, RATE)

    async def play() -> None:
        while True:
            for frame in audio.chunk(tone, RATE, 10):
                await source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, RATE // 100))

    player: asyncio.Task[None] | None = None
    try:
        start = time.perf_counter()
        await asyncio.wait_for(speaker.connect(creds.url, token(creds, "speaker", room_name)), 10)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await asyncio.wait_for(
            speaker.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            ),
            10,
        )
        player = asyncio.ensure_future(play())
        try:
            first = await asyncio.wait_for(heard, 15)
        except TimeoutError:
            raise SystemExit(f"run {run}: no audible frame within 15 s of the speaker's join") from None
    finally:
        if player is not None:
            player.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*([player] if player else []), *tasks, return_exceptions=True)
        await source.aclose()
        await speaker.disconnect()
        await listener.disconnect()
    return first - start


async def join_runs(creds: LiveKitCredentials) -> list[float]:
    return [await join_to_first_frame(creds, run) for run in range(RUNS)]


def summary(values: list[float]) -> dict[str, object]:
    return {
        "runs": len(values),
        "median_s": round(statistics.median(values), 4),
        "max_s": round(max(values), 4),
        "runs_s": [round(v, 4) for v in values],
    }


def main() -> int:
    cold = [cold_start() for _ in range(RUNS)]
    with LiveKitServer() as creds:
        attached = [attach(creds) for _ in range(RUNS)]
        first_frame = asyncio.run(join_runs(creds))
    result = {
        "livekit_server_cold_start": {**summary(cold), "target_s": 1.5, "met": statistics.median(cold) <= 1.5},
        "attach_external": {**summary(attached), "target_s": 0.05, "met": statistics.median(attached) <= 0.05},
        "join_to_first_audio_frame": {
            **summary(first_frame),
            "measured": "speaker connect() start -> first audible 48 kHz frame at a listener already in the room",
        },
        "in_network_namespace": os.environ.get("ESTUARY_IN_NETNS") == "1",
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
