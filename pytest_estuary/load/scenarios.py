"""One load session per call, on asyncio with our client: text, LiveKit voice or WebSocket voice.

Each phase is reported as ``report(name, seconds, failure)``; ``failure`` is None or a message that
starts with the requirement ID the server broke ("LK-5: …"), or ``ERROR:`` when the harness or the
network broke rather than the protocol. The client's timeouts are the requirements' bounds, so a
bound missed under load is the client's CONNECTION_TIMEOUT, mapped back to its phase here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pytest_estuary import audio
from pytest_estuary.client import BotResponse, EstuaryClient, EstuaryError, EventTimeout, PayloadError, SttResponse
from pytest_estuary.load.loop_lag import MONITOR, STALL_LIMIT
from pytest_estuary.load.phases import ERROR_ID, phase
from pytest_estuary.load.recordings import Recording
from pytest_estuary.transcripts import loosely_matches

__all__ = ["KINDS", "Kind", "Report", "SessionSettings", "loosely_matches", "run_session"]

Kind = Literal["text", "livekit", "websocket"]
KINDS: tuple[Kind, ...] = ("text", "livekit", "websocket")
Report = Callable[[str, float, str | None], None]
_counter = itertools.count(1)
LEAD_SILENCE = 1.0  # seconds of silence before the speech
# The nonces of the text sessions running in this process: a reply that carries another one's is crossed.
_ACTIVE_NONCES: set[str] = set()


@dataclass(frozen=True)
class SessionSettings:
    """What every session of a run shares (the API key is never in its repr)."""

    url: str
    api_key: str = field(repr=False)
    character_id: str = "pytest-character"
    player_prefix: str = "load"
    timeout: float = 10.0
    ca_file: str | None = None  # trusted besides the system store (staging behind a private CA)
    socketio_path: str = "/socket.io/"
    recordings: tuple[Recording, ...] = ()


class _Failed(Exception):
    """A phase failed; its message starts with the requirement ID (already reported)."""


class _Session:
    def __init__(self, kind: Kind, settings: SessionSettings, report: Report) -> None:
        self.kind, self.settings, self.report = kind, settings, report
        self.transport = None if kind == "text" else kind
        number = next(_counter)
        self.player = f"{settings.player_prefix}-{kind}-{number}-{uuid.uuid4().hex[:6]}"
        self.number = number
        bound = phase("livekit_ready").bound
        self.client = EstuaryClient(
            settings.url,
            settings.api_key,
            settings.character_id,
            self.player,
            voice_transport="websocket" if kind == "websocket" else "livekit",
            token_timeout=phase("livekit_token").bound,
            ready_timeout=bound,
            connect_timeout=phase("room_connect").bound,
            session_info_timeout=phase("connect").bound,
            voice_start_timeout=phase("voice_started").bound,
            leave_timeout=phase("stop").bound,
            reconnect=False,
            ca_file=settings.ca_file,
            socketio_path=settings.socketio_path,
        )

    def ok(self, name: str, seconds: float) -> None:
        self.report(name, seconds, None)

    def fail(self, name: str, seconds: float, why: str, requirement: str | None = None) -> _Failed:
        owner = requirement or phase(name, self.transport).requirement
        message = f"{owner}: {why}"
        self.report(name, seconds, message)
        return _Failed(message)

    async def run(self) -> None:
        try:
            await self.connect()
            if self.kind == "text":
                await self.text()
            else:
                await self.voice()
        except _Failed:
            pass
        finally:
            started = time.monotonic()
            await self.client.disconnect()
            self.ok("disconnect", time.monotonic() - started)
        self.report_malformed()

    def report_malformed(self) -> None:
        """A malformed server event (WIRE-1) that no phase failed on is still a violation."""
        for entry in self.client.history:
            if entry.event == "protocol_error" and isinstance(entry.payload, PayloadError):
                self.report("malformed_event", 0.0, f"WIRE-1: {entry.payload.message}")
                return

    async def connect(self) -> None:
        started = time.monotonic()
        try:
            await self.client.connect()
        except EstuaryError as exc:
            elapsed = time.monotonic() - started
            requirement = {"AUTH_FAILED": "CONN-2", "CONNECTION_FAILED": "CONN-1"}.get(exc.code.value, "CONN-4")
            raise self.fail("connect", elapsed, exc.message, requirement) from None
        self.ok("connect", time.monotonic() - started)

    async def text(self) -> None:
        nonce = uuid.uuid4().hex[:10]
        chunks: list[BotResponse] = []
        self.client.on("bot_response", chunks.append)
        _ACTIVE_NONCES.add(nonce)
        started = time.monotonic()
        try:
            await self.client.send_text(f"Hello from load session {nonce}, please answer briefly.")
            final = await self._wait_final_reply(started, "text_reply")
        finally:
            _ACTIVE_NONCES.discard(nonce)
        elapsed = time.monotonic() - started
        ours = [c for c in chunks if c.message_id == final.message_id]
        indexes = [c.chunk_index for c in ours]
        if indexes != list(range(len(ours))) or sum(c.is_final for c in ours) != 1 or not ours[-1].is_final:
            shown = [(c.chunk_index, c.is_final) for c in ours]
            raise self.fail(
                "text_reply",
                elapsed,
                f"reply {final.message_id!r}: chunks (index, final) {shown} "
                "are not 0,1,2… with exactly one final chunk, the last",
            )
        crossed = [other for other in _ACTIVE_NONCES if other in final.text]
        if crossed and nonce not in final.text:
            raise self.fail(
                "text_reply",
                elapsed,
                f"a reply from another session: {final.text[:120]!r} "
                f"carries that session's words ({crossed[0]}), not ours ({nonce})",
            )
        self.ok("text_reply", elapsed)

    async def _wait_final_reply(self, started: float, name: str) -> BotResponse:
        try:
            reply: BotResponse = await self.client.wait_for(
                "bot_response", predicate=lambda r: r.is_final, timeout=phase(name).limit(self.settings.timeout)
            )
        except EventTimeout as exc:
            raise self.fail(name, time.monotonic() - started, exc.message) from None
        return reply

    async def voice(self) -> None:
        started = time.monotonic()
        try:
            await self.client.start_voice()
        except EstuaryError as exc:
            self._voice_failed(time.monotonic() - started, exc)
        self._voice_started(time.monotonic() - started)
        if self.kind == "livekit":
            await self._bot_track()
        await self._speech()
        stop = time.monotonic()
        marks = len(self.client.history)
        await self.client.stop_voice()
        failures = [e.payload for e in self.client.history[marks:] if e.event == "teardown_failed"]
        if failures:
            raise self.fail("stop", time.monotonic() - stop, "; ".join(f"{f.step}: {f.reason}" for f in failures))
        self.ok("stop", time.monotonic() - stop)

    def _voice_failed(self, elapsed: float, exc: EstuaryError) -> None:
        """The step of start_voice() that failed, from the client's error (its phase, setting, message)."""
        if self.kind == "websocket":
            raise self.fail("voice_started", elapsed, exc.message) from None
        message = exc.message
        failed = "livekit_token"  # the token reply, a livekit_error to livekit_token, or the socket closing
        if isinstance(exc, EventTimeout) and exc.setting == "ready_timeout":
            failed = "livekit_ready"
        elif "room connect" in message or "livekit_token announced room" in message:
            failed = "room_connect"
        elif "publish" in message:
            failed = "publish"
        elif "livekit_ready" in message or "could not set up room" in message or "during the handshake" in message:
            failed = "livekit_ready"
        requirement = "LK-3" if "livekit_token announced room" in message else None  # a room not the token's
        raise self.fail(failed, elapsed, message, requirement) from None

    def _voice_started(self, elapsed: float) -> None:
        if self.kind == "websocket":
            self.ok("voice_started", elapsed)
            return
        timings = self.client.voice_timings
        previous = 0.0
        for mark, name in (("token_reply", "livekit_token"), ("room_connected", "room_connect"),
                           ("published", "publish"), ("ready", "livekit_ready")):  # fmt: skip
            at = timings.get(mark, previous)
            self.ok(name, at - previous)
            previous = at

    async def _bot_track(self) -> None:
        started = time.monotonic()
        bound = phase("bot_track").bound
        while self.client.bot_audio.seconds <= 0:
            if time.monotonic() - started > bound:
                raise self.fail(
                    "bot_track",
                    time.monotonic() - started,
                    f"no audio from a bot track within {bound:g} s of livekit_ready",
                )
            await asyncio.sleep(0.02)
        self.ok("bot_track", time.monotonic() - started)

    def _speech_failed(self, elapsed: float, why: str) -> _Failed:
        """A missed or wrong transcript is the server's, unless our own loop stalled while speaking."""
        stall = MONITOR.worst_since(time.monotonic() - elapsed - LEAD_SILENCE)
        if stall >= STALL_LIMIT:
            why += f" (not counted against the server: the load generator's loop stalled {stall * 1000:.0f} ms"
            return self.fail("stt_final", elapsed, why + " while it spoke, so its speech went out late)", ERROR_ID)
        return self.fail("stt_final", elapsed, why + f" (load generator loop lateness ≤ {stall * 1000:.0f} ms)")

    async def _speech(self) -> None:
        recordings = self.settings.recordings
        said = recordings[self.number % len(recordings)]
        bot_audio = self.client.bot_audio
        bot_audio.clear()
        # A second of silence first, as a person pauses: the bot may subscribe to our track a moment
        # after livekit_ready under load, and a recogniser that missed the start hears other words.
        lead = audio.silence(LEAD_SILENCE, said.sample_rate)
        pcm = audio.concat(lead, said.pcm, audio.silence(0.8, said.sample_rate))
        self.client.audio_input.say(pcm, said.sample_rate)
        started = time.monotonic() + LEAD_SILENCE  # the speech itself starts after the pause
        bound = phase("stt_final").limit(self.settings.timeout) + len(pcm) / said.sample_rate
        try:
            final: SttResponse = await self.client.wait_for(
                "stt_response", predicate=lambda r: r.is_final, timeout=bound
            )
        except EventTimeout as exc:
            raise self._speech_failed(time.monotonic() - started, exc.message) from None
        heard_at = time.monotonic()
        elapsed = heard_at - started
        if not loosely_matches(final.text, said.text):
            other = next((r for r in recordings if r is not said and loosely_matches(final.text, r.text)), None)
            why = (
                f"a transcript of another session's speech: heard {final.text!r} ({other.name}), said {said.text!r}"
                if other
                else f"transcript {final.text!r} does not match what was said, {said.text!r}"
            )
            raise self._speech_failed(elapsed, why)
        self.ok("stt_final", elapsed)
        await self._wait_final_reply(heard_at, "bot_response_final")
        self.ok("bot_response_final", time.monotonic() - heard_at)
        try:
            await bot_audio.wait_for_sound(min_seconds=0.1, timeout=phase("bot_audio").limit(self.settings.timeout))
        except EventTimeout as exc:
            raise self.fail("bot_audio", time.monotonic() - heard_at, exc.message) from None
        first = bot_audio.first_sound_at
        loop_now = asyncio.get_running_loop().time()
        sound_at = time.monotonic() - (loop_now - first) if first is not None else time.monotonic()
        self.ok("bot_audio", max(0.0, sound_at - heard_at))


async def run_session(kind: Kind, settings: SessionSettings, report: Report) -> None:
    """Run one session of ``kind`` start to end, reporting each phase; never raises for the server's
    faults (they are reported). Anything else escaping is the harness's: reported as ``ERROR``."""
    try:
        session = _Session(kind, settings, report)
    except EstuaryError as exc:
        report("setup", 0.0, f"{ERROR_ID}: {exc.message}")
        return
    try:
        await session.run()
    except Exception as exc:
        report("session", 0.0, f"{ERROR_ID}: {type(exc).__name__}: {exc}"[:300])
