"""Benchmark: the client's LiveKit handshake and the voice round trip. Prints JSON.

- ``start_voice()`` → ``livekit_ready`` over ≥ 20 runs (p50/p95), with its parts (token reply,
  room connect, publish, livekit_join → livekit_ready);
- the same run's floor: a bare ``livekit.rtc`` connect + microphone publish to the same server,
  interleaved with the client runs so both see the same machine state; ratio = p50 / floor p50;
  beside it, for diagnosis, a pair floor: the same while a second bare peer joins that room;
- mouth to ear: end of a synthetic utterance → first audible bot audio, for LiveKit and WebSocket.

Starts its own livekit-server and fake Estuary server. Run inside the network namespace:
    scripts/isolated_run.sh .venv/bin/python bench/voice_handshake.py [--runs 20] [--round-trips 5]
Target (design.md): p50 <= 1.3 x floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from livekit import api, rtc

from fake_server import FakeEstuaryServer, LiveKitConfig
from pytest_estuary import audio
from pytest_estuary.client import EstuaryClient, SyntheticAudioInput
from pytest_estuary.livekit_server import LiveKitCredentials, LiveKitServer

STT_ENDPOINT_SECONDS = 0.4  # the fake STT needs this much quiet to end an utterance
# After each handshake the fake server puts a new standby bot in a fresh room (~0.15 s of work);
# the floor is measured after it, so that neither run pays for the other's joins.
STANDBY_SETTLE = 0.5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 0.5) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "n": len(values),
    }


def first_after(client: EstuaryClient, event: str, since: float) -> float:
    return next(e.t for e in client.history if e.event == event and e.t >= since)


async def bare_connect_publish(creds: LiveKitCredentials, room_name: str | None = None) -> float:
    """The floor: what any LiveKit client must do to be in a room with a microphone track."""
    room_name = room_name or f"floor-{uuid.uuid4().hex[:8]}"
    token = (
        api.AccessToken(creds.api_key, creds.api_secret)
        .with_identity(f"floor-{uuid.uuid4().hex[:6]}")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .to_jwt()
    )
    room = rtc.Room()
    source = rtc.AudioSource(48000, 1)
    started = time.monotonic()
    await room.connect(creds.url, token)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    took = time.monotonic() - started
    await room.disconnect()
    await source.aclose()
    return took


async def bare_pair_connect_publish(creds: LiveKitCredentials) -> float:
    """Diagnosis, not the target's floor: the same, while a second bare participant joins the same
    room at the same moment, as the warm bot does during a handshake (LiveKit work only)."""
    room_name = f"pair-{uuid.uuid4().hex[:8]}"
    took, _ = await asyncio.gather(bare_connect_publish(creds, room_name), bare_connect_publish(creds, room_name))
    return took


async def client_handshake(client: EstuaryClient) -> dict[str, float]:
    started = time.monotonic()
    await client.start_voice()
    ended = time.monotonic()
    token = first_after(client, "livekit_token", started)
    ready = first_after(client, "livekit_ready", started)
    steps = client.voice_timings
    await client.stop_voice()
    return {
        "to_ready": ready - started,
        "start_voice": ended - started,
        "token_reply": token - started,
        "connect": steps["room_connected"] - steps["token_reply"],
        "publish": steps["published"] - steps["room_connected"],
        "join_to_ready": steps["ready"] - steps["published"],
    }


async def mouth_to_ear(client: EstuaryClient, runs: int) -> list[float]:
    source = client.audio_input
    assert isinstance(source, SyntheticAudioInput)
    loop = asyncio.get_running_loop()
    await client.start_voice()
    results = []
    for _ in range(runs):
        client.bot_audio.clear()
        await source.say(audio.speech_like(1.0, 48000, pitch=150))  # returns when the last sample was sent
        spoken = loop.time()
        await client.bot_audio.wait_for_sound(min_seconds=0.05, timeout=15)
        assert client.bot_audio.first_sound_at is not None
        results.append(client.bot_audio.first_sound_at - spoken)
        await asyncio.sleep(3.5)  # let the bot finish speaking (≤ 3 s of audio)
    await client.stop_voice()
    return results


async def main(runs: int, round_trips: int) -> dict[str, Any]:
    manager = LiveKitServer()
    creds = manager.start()
    fake = FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret)).start()
    try:
        client = EstuaryClient(fake.url, fake.api_key, "bench", "bench-player", voice_transport="livekit")
        await client.connect()
        for _ in range(2):  # warm-up: first connections pay one-time costs on both sides
            await client_handshake(client)
            await bare_connect_publish(creds)
        handshakes, floors, pairs = [], [], []
        for _ in range(runs):
            handshakes.append(await client_handshake(client))
            await asyncio.sleep(STANDBY_SETTLE)
            floors.append(await bare_connect_publish(creds))
            pairs.append(await bare_pair_connect_publish(creds))
            await asyncio.sleep(STANDBY_SETTLE)
        await client.disconnect()
        trips: dict[str, Any] = {}
        for transport in ("livekit", "websocket"):
            voice = EstuaryClient(fake.url, fake.api_key, "bench", f"bench-{transport}", voice_transport=transport)
            await voice.connect()
            values = await mouth_to_ear(voice, round_trips)
            await voice.disconnect()
            trips[transport] = summary(values) | {
                "p50_minus_stt_endpointing_ms": round((pct(values, 0.5) - STT_ENDPOINT_SECONDS) * 1000, 1)
            }
        to_ready = [h["to_ready"] for h in handshakes]
        floor_p50 = pct(floors, 0.5)
        return {
            "start_voice_to_livekit_ready": summary(to_ready),
            "start_voice_total": summary([h["start_voice"] for h in handshakes]),
            "parts": {
                part: summary([h[part] for h in handshakes])
                for part in ("token_reply", "connect", "publish", "join_to_ready")
            },
            "floor_bare_connect_publish": summary(floors),
            "ratio_p50": round(pct(to_ready, 0.5) / floor_p50, 2),
            "pair_floor_bare_connect_publish_beside_a_joining_peer": summary(pairs),
            "ratio_p50_to_pair_floor": round(pct(to_ready, 0.5) / pct(pairs, 0.5), 2),
            "ratio_target": 1.3,
            # the client's own steps (token reply + connect + publish), i.e. without the server's bot join
            "client_steps_ratio_p50": round(
                pct([h["token_reply"] + h["connect"] + h["publish"] for h in handshakes], 0.5) / floor_p50, 2
            ),
            "mouth_to_ear": trips,
            "notes": "the fake server's standby bot is in the room before the token reply (LK-11); "
            "the pair floor is a bare connect+publish while a second bare peer joins the same room, "
            "what a bot joining during the handshake costs on 2 cores; "
            "mouth_to_ear includes the fake STT's 400 ms end-of-utterance silence",
            "stdev_ms": round(statistics.pstdev(to_ready) * 1000, 1),
        }
    finally:
        fake.stop()
        manager.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--round-trips", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(max(20, args.runs), args.round_trips)), indent=2))
