"""Fake speech recognition: utterances found by energy, so a transcript proves audio arrived."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["SttEvent", "Transcripts", "UtteranceDetector"]

FRAME_MS = 20
THRESHOLD_DBFS = -40.0
START_MS = 150  # this much loud audio starts an utterance
END_MS = 400  # this much quiet audio ends it


@dataclass(frozen=True)
class SttEvent:
    kind: Literal["start", "end"]
    seconds: float  # voiced audio so far


class UtteranceDetector:
    """Feed PCM16 at any rate; yields ``start`` once an utterance is clearly under way, ``end`` after it."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self._frame = sample_rate * FRAME_MS // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._loud_run = 0
        self._quiet_run = 0
        self._in_utterance = False
        self._voiced_frames = 0

    def feed(self, pcm: npt.NDArray[np.int16]) -> Iterator[SttEvent]:
        self._pending = np.concatenate([self._pending, pcm])
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame :]
            yield from self._step(_dbfs(frame) > THRESHOLD_DBFS)

    def _step(self, loud: bool) -> Iterator[SttEvent]:
        if loud:
            self._loud_run += 1
            self._quiet_run = 0
            if self._in_utterance:
                self._voiced_frames += 1
            elif self._loud_run * FRAME_MS >= START_MS:
                self._in_utterance = True
                self._voiced_frames = self._loud_run
                yield SttEvent("start", self._voiced_frames * FRAME_MS / 1000)
        else:
            self._quiet_run += 1
            self._loud_run = 0
            if self._in_utterance and self._quiet_run * FRAME_MS >= END_MS:
                self._in_utterance = False
                yield SttEvent("end", self._voiced_frames * FRAME_MS / 1000)


def _dbfs(frame: npt.NDArray[np.int16]) -> float:
    level = float(np.sqrt(np.mean((frame.astype(np.float64) / 32767.0) ** 2)))
    return 20 * np.log10(level) if level > 0 else -120.0


class Transcripts:
    """Scripted transcripts first (shared, in order), then ``utterance N`` counted per session."""

    def __init__(self) -> None:
        self.scripted: deque[str] = deque()

    def next(self, session_count: int) -> str:
        return self.scripted.popleft() if self.scripted else f"utterance {session_count}"
