"""BotAudio: everything the bot said that reached this client, as PCM16 for the app and for tests."""

from __future__ import annotations

import asyncio

from pytest_estuary import audio
from pytest_estuary.client.audio_input import resample
from pytest_estuary.client.errors import EventTimeout
from pytest_estuary.waiting import WaitTimeout, wait_until

__all__ = ["BotAudio"]

THRESHOLD_DBFS = -40.0  # the contract's "heard" level


class BotAudio:
    """Bot audio received over LiveKit (the bot's track) or ``bot_voice`` chunks (WebSocket).

    Args:
        sample_rate: the rate everything appended is resampled to (the client sets it per transport).
    """

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self._chunks: list[audio.PCM16] = []
        self._voiced = 0.0
        self._total = 0.0
        self.first_sound_at: float | None = None  # loop time of the first audible chunk since clear()
        self._changed = asyncio.Event()

    def append(self, pcm: audio.PCM16, sample_rate: int) -> None:
        """Add received audio (resampled to ``self.sample_rate``)."""
        pcm = resample(pcm, sample_rate, self.sample_rate)
        self._chunks.append(pcm)
        seconds = len(pcm) / self.sample_rate
        self._total += seconds
        if len(pcm) and audio.level_dbfs(pcm) > THRESHOLD_DBFS:
            self._voiced += seconds
            if self.first_sound_at is None:
                self.first_sound_at = asyncio.get_running_loop().time()
        self._changed.set()

    def pcm(self) -> audio.PCM16:
        return audio.concat(*self._chunks)

    @property
    def voiced_seconds(self) -> float:
        return self._voiced

    @property
    def seconds(self) -> float:
        return self._total

    def clear(self, sample_rate: int | None = None) -> None:
        self._chunks.clear()
        self._voiced = self._total = 0.0
        self.first_sound_at = None
        if sample_rate is not None:
            self.sample_rate = sample_rate

    async def wait_for_sound(self, min_seconds: float = 0.3, timeout: float = 5.0) -> audio.PCM16:
        """Wait until ≥ ``min_seconds`` of audible bot audio (> -40 dBFS) arrived since ``clear()``;
        EventTimeout (EVENT_TIMEOUT) says how much was heard."""
        try:
            await wait_until(
                lambda: self._voiced >= min_seconds,
                timeout=timeout,
                awaited="bot audio",
                changed=self._changed,  # append() sets it: no polling while audio flows
            )
        except WaitTimeout:
            raise EventTimeout(
                f"{min_seconds:.2f} s of bot audio above {THRESHOLD_DBFS:.0f} dBFS",
                timeout,
                [f"{self._voiced:.2f} s audible of {self._total:.2f} s received"],
            ) from None
        return self.pcm()

    def heard_voice(self, pitch: float, min_seconds: float = 0.3) -> bool:
        """True when the recording holds ≥ ``min_seconds`` of a voice at ``pitch`` (see audio.heard_voice)."""
        return audio.heard_voice(self.pcm(), self.sample_rate, pitch, min_seconds=min_seconds)

    def __repr__(self) -> str:
        return f"BotAudio({self._total:.2f} s received, {self._voiced:.2f} s audible, {self.sample_rate} Hz)"
