"""Fake speech recognition: utterances found by energy (so a transcript proves audio arrived), and
recognised when they are a known recording (fake_server.utterances); else a deterministic default."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from fake_server.fingerprint import Fingerprint, fingerprint

__all__ = ["SttEvent", "Transcripts", "UtteranceDetector"]

FRAME_MS = 20
THRESHOLD_DBFS = -40.0
START_MS = 150  # this much loud audio starts an utterance
END_MS = 400  # this much quiet audio ends it
MAX_UTTERANCE_S = 20.0  # audio kept for the fingerprint; a longer utterance is fingerprinted by its start


@dataclass(frozen=True)
class SttEvent:
    kind: Literal["start", "end"]
    seconds: float  # voiced audio so far
    fingerprint: Fingerprint | None = None  # at the end: what the utterance sounded like


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
        self._lead_in: deque[npt.NDArray[np.int16]] = deque(maxlen=START_MS // FRAME_MS + 1)
        self._heard: list[npt.NDArray[np.int16]] = []  # the utterance so far, trailing quiet included
        self._max_frames = round(MAX_UTTERANCE_S * 1000 / FRAME_MS)

    def feed(self, pcm: npt.NDArray[np.int16]) -> Iterator[SttEvent]:
        self._pending = np.concatenate([self._pending, pcm])
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame :]
            yield from self._step(frame, _dbfs(frame) > THRESHOLD_DBFS)

    def _step(self, frame: npt.NDArray[np.int16], loud: bool) -> Iterator[SttEvent]:
        if self._in_utterance and len(self._heard) < self._max_frames:
            self._heard.append(frame)
        if loud:
            self._loud_run += 1
            self._quiet_run = 0
            if self._in_utterance:
                self._voiced_frames += 1
                return
            self._lead_in.append(frame)
            if self._loud_run * FRAME_MS >= START_MS:
                self._in_utterance = True
                self._voiced_frames = self._loud_run
                self._heard = list(self._lead_in)[-self._loud_run :]
                yield SttEvent("start", self._voiced_frames * FRAME_MS / 1000)
        else:
            self._quiet_run += 1
            self._loud_run = 0
            if not self._in_utterance:
                self._lead_in.clear()
            elif self._quiet_run * FRAME_MS >= END_MS:
                self._in_utterance = False
                spoken = self._heard[: max(0, len(self._heard) - self._quiet_run)]
                self._heard = []
                pcm = np.concatenate(spoken) if spoken else np.zeros(0, dtype=np.int16)
                yield SttEvent("end", self._voiced_frames * FRAME_MS / 1000, fingerprint(pcm, self.sample_rate))


def _dbfs(frame: npt.NDArray[np.int16]) -> float:
    level = float(np.sqrt(np.mean((frame.astype(np.float64) / 32767.0) ** 2)))
    return 20 * np.log10(level) if level > 0 else -120.0


class Transcripts:
    """Scripted transcripts first (shared, in order), then what was recognised, then ``utterance N``
    counted per session."""

    def __init__(self) -> None:
        self.scripted: deque[str] = deque()

    def next(self, session_count: int, recognised: str | None = None) -> str:
        if self.scripted:
            return self.scripted.popleft()
        return recognised or f"utterance {session_count}"
