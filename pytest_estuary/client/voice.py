"""What both voice transports share: the context they run in and the real-time audio pump."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_estuary import audio
from pytest_estuary.client.audio_input import AudioInput
from pytest_estuary.client.bot_audio import BotAudio
from pytest_estuary.client.config import ClientConfig
from pytest_estuary.client.emitter import Emitter, Waiter
from pytest_estuary.client.errors import ErrorCode, EstuaryError, EventTimeout
from pytest_estuary.client.events import PayloadError
from pytest_estuary.client.selection import Transport
from pytest_estuary.client.signalling import Signalling

__all__ = ["VoiceContext", "VoiceSession", "await_reply", "open_input", "protocol_error_about", "pump"]


@dataclass
class VoiceContext:
    config: ClientConfig
    signalling: Signalling
    emitter: Emitter
    audio_input: AudioInput
    bot_audio: BotAudio
    is_muted: Callable[[], bool]
    on_ended: Callable[[VoiceSession], None]  # a voice that ended by itself (room deleted, voice_timeout…)


class VoiceSession(Protocol):
    transport: Transport
    room: str | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def end(self, reason: str) -> None: ...

    def halt(self) -> None: ...

    def set_muted(self, muted: bool) -> None: ...


async def pump(
    audio_input: AudioInput,
    sample_rate: int,
    frame_ms: int,
    send: Callable[[audio.PCM16], Awaitable[None]],
    is_muted: Callable[[], bool],
) -> None:
    """Read one frame every ``frame_ms`` in real time and send it, unless muted (LIFE-1).

    While muted the input is still read, so speech during mute is lost like on a real mic
    instead of arriving late after unmute.
    """
    loop = asyncio.get_running_loop()
    samples = sample_rate * frame_ms // 1000
    period = frame_ms / 1000
    deadline = loop.time()
    while True:
        frame = audio_input.read(samples)
        if not is_muted():
            await send(frame)
        deadline += period
        delay = deadline - loop.time()
        if delay < -0.2:  # fell far behind (a stalled loop): resynchronise instead of bursting
            deadline = loop.time()
            delay = 0
        await asyncio.sleep(max(0.0, delay))


async def open_input(ctx: VoiceContext, sample_rate: int) -> None:
    """Open the audio input within connect_timeout; any failure is MICROPHONE_DENIED (ERR-4)."""
    bound = ctx.config.connect_timeout
    try:
        async with asyncio.timeout(bound):
            await ctx.audio_input.open(sample_rate)
    except TimeoutError:
        raise EstuaryError(
            ErrorCode.MICROPHONE_DENIED,
            f"start_voice(): audio input: {type(ctx.audio_input).__name__} did not open within {bound:g} s "
            "(connect_timeout)",
        ) from None


async def await_reply(
    waiter: Waiter,
    *,
    awaited: str,
    timeout: float,
    phase: str,
    setting: str,
    failure_events: dict[str, Callable[[Any], str]],
) -> Any:
    """Wait for the reply ``waiter`` watches: a timeout is CONNECTION_TIMEOUT naming ``phase`` and the
    ``setting`` that bounds it; each failure event is CONNECTION_FAILED."""
    try:
        entry = await waiter.wait(timeout, awaited)
    except EventTimeout as exc:
        raise EventTimeout(
            awaited, timeout, exc.seen, code=ErrorCode.CONNECTION_TIMEOUT, phase=phase, setting=setting
        ) from exc
    describe = failure_events.get(entry.event)
    if describe is not None:
        error = EstuaryError(ErrorCode.CONNECTION_FAILED, describe(entry.payload))
        if isinstance(entry.payload, BaseException):
            raise error from entry.payload
        raise error
    return entry.payload


def protocol_error_about(*events: str) -> Callable[[Any], bool]:
    """Predicate: a protocol_error about one of ``events``, or any other event of the waiter."""

    def matches(payload: Any) -> bool:
        return not isinstance(payload, PayloadError) or payload.event in events

    return matches

