"""The fake bot's voice: speech-like audio at a known pitch, so tests can tell it was heard.

:func:`frames` makes it piece by piece, so the bot's first frame goes out without waiting for the
whole reply's audio to be computed (several milliseconds for three seconds at 48 kHz).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

__all__ = ["BOT_PITCH_HZ", "frames", "speech_duration", "synthesize"]

BOT_PITCH_HZ = 220.0
SECONDS_PER_CHARACTER = 0.06
MIN_SECONDS, MAX_SECONDS = 0.6, 3.0
LEVEL = 0.35  # of full scale, at the waveform's peak
RAMP_S = 0.015
SYLLABLES_HZ = 3.0


def speech_duration(text: str) -> float:
    return min(MAX_SECONDS, max(MIN_SECONDS, len(text) * SECONDS_PER_CHARACTER))


def _voice(phase: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)


def _peak() -> float:
    """The waveform's peak, from one period (the envelope and the ramps never exceed 1)."""
    return float(np.abs(_voice(np.linspace(0.0, 2 * np.pi, 4096))).max())


_PEAK = _peak()


def frames(text: str, sample_rate: int, frame: int, pitch: float = BOT_PITCH_HZ) -> Iterator[npt.NDArray[np.int16]]:
    """Harmonics of ``pitch`` under a syllable-rate envelope, as long as ``text`` would take to say,
    in frames of ``frame`` samples (the last one shorter), each computed when it is asked for."""
    n = round(speech_duration(text) * sample_rate)
    scale = LEVEL * 32767 / _PEAK
    for start in range(0, n, frame):
        t = np.arange(start, min(n, start + frame)) / sample_rate
        envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * SYLLABLES_HZ * t))
        ramp = np.clip(np.minimum(t, (n - 1) / sample_rate - t) / RAMP_S, 0.0, 1.0)
        yield (scale * _voice(2 * np.pi * pitch * t) * envelope * ramp).astype(np.int16)


def synthesize(text: str, sample_rate: int, pitch: float = BOT_PITCH_HZ) -> npt.NDArray[np.int16]:
    """All of :func:`frames` at once."""
    return np.concatenate(list(frames(text, sample_rate, sample_rate, pitch)))
