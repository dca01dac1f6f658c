"""Benchmark: the client's LiveKit handshake and the voice round trip. Prints JSON.

- ``start_voice()`` → ``livekit_ready`` over ≥ 20 runs (p50/p95), with its parts (token reply,
  room connect, publish, livekit_join → livekit_ready);
- the same run's floor: a bare ``livekit.rtc`` connect + microphone publish to the same server,
  interleaved with the client runs so both see the same machine state; ratio = p50 / floor p50;
  beside it, for diagnosis, a pair floor: the same while a second bare peer joins that room;
- mouth to ear: end of a synthetic utterance → first audible bot audio, for LiveKit and WebSocket,
  and the same run's LiveKit floor: two bare ``livekit.rtc`` peers in one room, one speaking like
  the client (10 ms frames, a 100 ms source queue), the other running the fake STT's detector and
  answering with the bot's synthetic voice the moment an utterance ends (no server, no bot worker).

Starts its own livekit-server and fake Estuary server. Run inside the network namespace:
    scripts/isolated_run.sh .venv/bin/python bench/voice_handshake.py [--runs 20] [--round-trips 8]
        [--mouth-to-ear-only]
Targets (design.md): handshake p50 <= 1.3 x floor; LiveKit mouth to ear within 30 ms of its floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import numpy as np
from livekit import api, rtc

from fake_server import FakeEstuaryServer, LiveKitConfig
from fake_server.stt import UtteranceDetector
from fake_server.voice_synth import synthesize
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


async def mouth_to_ear_trip(client: EstuaryClient) -> float:
    """End of a synthetic utterance (its last sample sent) → the first audible bot audio."""
    source = client.audio_input
    assert isinstance(source, SyntheticAudioInput)
    client.bot_audio.clear()
    await source.say(audio.speech_like(1.0, 48000, pitch=150))  # returns when the last sample was sent
    spoken = asyncio.get_running_loop().time()
    await client.bot_audio.wait_for_sound(min_seconds=0.05, timeout=15)
    assert client.bot_audio.first_sound_at is not None
    took = client.bot_audio.first_sound_at - spoken
    await asyncio.sleep(3.5)  # let the bot finish speaking (≤ 3 s of audio)
    return took


def bare_token(creds: LiveKitCredentials, room: str, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    return api.AccessToken(creds.api_key, creds.api_secret).with_identity(identity).with_grants(grants).to_jwt()


class EchoFloor:
    """Mouth to ear between two bare peers: the least LiveKit itself lets the fake's voice path take.

    The mouth speaks like the client (10 ms frames paced in real time, a 100 ms source queue); the
    echo runs the fake STT's detector on what it hears and, the moment an utterance ends, says the
    bot's synthetic voice on its own track (no server, no bot worker); the mouth's ear judges sound
    like the client's BotAudio (a 10 ms frame above -40 dBFS)."""

    RATE, FRAME = 48000, 480

    def __init__(self, creds: LiveKitCredentials) -> None:
        self.creds = creds
        self.mouth, self.echo = rtc.Room(), rtc.Room()
        self.mouth_source = rtc.AudioSource(self.RATE, 1, queue_size_ms=100)  # as the client's
        self.echo_source = rtc.AudioSource(self.RATE, 1)  # as the bot's
        self.heard_at: list[float] = []
        self.pending: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        self.spoken = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.voice = synthesize("You said: utterance 1", self.RATE)  # ready before it is needed

    async def _answer(self, track: rtc.Track) -> None:
        detector = UtteranceDetector(self.RATE)
        async for event in rtc.AudioStream(track, sample_rate=self.RATE, num_channels=1):
            for heard in detector.feed(np.frombuffer(event.frame.data, dtype=np.int16)):
                if heard.kind == "end":
                    for start in range(0, len(self.voice) - self.FRAME + 1, self.FRAME):
                        frame = self.voice[start : start + self.FRAME].tobytes()
                        await self.echo_source.capture_frame(rtc.AudioFrame(frame, self.RATE, 1, self.FRAME))

    async def _listen(self, track: rtc.Track) -> None:
        loop = asyncio.get_running_loop()
        async for event in rtc.AudioStream(track, sample_rate=self.RATE, num_channels=1):
            if audio.level_dbfs(np.frombuffer(event.frame.data, dtype=np.int16)) > -40.0:
                self.heard_at.append(loop.time())

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            chunk = self.pending.pop(0) if self.pending else np.zeros(self.FRAME, dtype=np.int16)
            await self.mouth_source.capture_frame(rtc.AudioFrame(chunk.tobytes(), self.RATE, 1, self.FRAME))
            if not self.pending and not self.spoken.is_set() and chunk.any():
                self.spoken.set()
            deadline += self.FRAME / self.RATE
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    async def start(self) -> None:
        room = f"echo-{uuid.uuid4().hex[:8]}"

        def on_track(listener: Any) -> Any:
            return lambda track, *_: self.tasks.append(asyncio.ensure_future(listener(track)))

        self.echo.on("track_subscribed", on_track(self._answer))
        self.mouth.on("track_subscribed", on_track(self._listen))
        await self.echo.connect(self.creds.url, bare_token(self.creds, room, "echo"))
        await self.mouth.connect(self.creds.url, bare_token(self.creds, room, "mouth"))
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        voice = rtc.LocalAudioTrack.create_audio_track("voice", self.echo_source)
        await self.echo.local_participant.publish_track(voice, options)
        mic = rtc.LocalAudioTrack.create_audio_track("microphone", self.mouth_source)
        await self.mouth.local_participant.publish_track(mic, options)
        self.tasks.append(asyncio.ensure_future(self._feed()))
        await asyncio.sleep(1.0)  # both subscribed

    async def trip(self) -> float:
        loop = asyncio.get_running_loop()
        speech = audio.speech_like(1.0, self.RATE, pitch=150)
        self.spoken.clear()
        self.pending.extend(speech[i : i + self.FRAME] for i in range(0, len(speech) - self.FRAME + 1, self.FRAME))
        await self.spoken.wait()
        said = loop.time()
        while not [t for t in self.heard_at if t > said] and loop.time() - said < 15:
            await asyncio.sleep(0.005)
        took = min(t for t in self.heard_at if t > said) - said
        await asyncio.sleep(3.5)  # let the echo finish speaking
        self.heard_at.clear()
        return took

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.mouth.disconnect()
        await self.echo.disconnect()
        await self.mouth_source.aclose()
        await self.echo_source.aclose()


async def handshake_runs(fake: FakeEstuaryServer, creds: LiveKitCredentials, runs: int) -> dict[str, Any]:
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
        "stdev_ms": round(statistics.pstdev(to_ready) * 1000, 1),
    }


async def mouth_to_ear_runs(fake: FakeEstuaryServer, creds: LiveKitCredentials, round_trips: int) -> dict[str, Any]:
    """LiveKit trips alternate with its floor's, so both see the same machine; then WebSocket's."""
    clients = {
        transport: EstuaryClient(fake.url, fake.api_key, "bench", f"bench-{transport}", voice_transport=transport)
        for transport in ("livekit", "websocket")
    }
    floor = EchoFloor(creds)
    values: dict[str, list[float]] = {"livekit": [], "websocket": [], "floor": []}
    try:
        for client in clients.values():
            await client.connect()
            await client.start_voice()
        await floor.start()
        for _ in range(round_trips):
            values["livekit"].append(await mouth_to_ear_trip(clients["livekit"]))
            values["floor"].append(await floor.trip())
        for _ in range(round_trips):
            values["websocket"].append(await mouth_to_ear_trip(clients["websocket"]))
    finally:
        await floor.close()
        for client in clients.values():
            await client.disconnect()

    def described(name: str) -> dict[str, Any]:
        return summary(values[name]) | {
            "p50_minus_stt_endpointing_ms": round((pct(values[name], 0.5) - STT_ENDPOINT_SECONDS) * 1000, 1)
        }

    return {
        "livekit": described("livekit"),
        "websocket": described("websocket"),
        "livekit_floor_bare_peers": described("floor"),
        "livekit_minus_floor_p50_ms": round((pct(values["livekit"], 0.5) - pct(values["floor"], 0.5)) * 1000, 1),
        "livekit_minus_floor_paired_median_ms": round(
            statistics.median(a - b for a, b in zip(values["livekit"], values["floor"], strict=True)) * 1000, 1
        ),
        "target_within_ms": 30,
    }


async def main(runs: int, round_trips: int, mouth_to_ear_only: bool = False) -> dict[str, Any]:
    manager = LiveKitServer()
    creds = manager.start()
    fake = FakeEstuaryServer(livekit=LiveKitConfig(creds.url, creds.api_key, creds.api_secret)).start()
    try:
        result = {} if mouth_to_ear_only else await handshake_runs(fake, creds, runs)
        result["mouth_to_ear"] = await mouth_to_ear_runs(fake, creds, round_trips)
        result["notes"] = (
            "the fake server's standby bot is in the room before the token reply (LK-11); "
            "the pair floor is a bare connect+publish while a second bare peer joins the same room, "
            "what a bot joining during the handshake costs on 2 cores; "
            "mouth_to_ear includes the fake STT's 400 ms end-of-utterance silence, and so does its floor"
        )
        return result
    finally:
        fake.stop()
        manager.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--round-trips", type=int, default=10)
    parser.add_argument("--mouth-to-ear-only", action="store_true", help="skip the handshake runs")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(max(20, args.runs), args.round_trips, args.mouth_to_ear_only)), indent=2))
