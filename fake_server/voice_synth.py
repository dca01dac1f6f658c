"""The fake bot's voice: speech-like audio at a known pitch, so tests can tell it was heard."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["BOT_PITCH_HZ", "speech_duration", "synthesize"]

BOT_PITCH_HZ = 220.0
SECONDS_PER_CHARACTER = 0.06
MIN_SECONDS, MAX_SECONDS = 0.6, 3.0


def speech_duration(text: str) -> float:
    return min(MAX_SECONDS, max(MIN_SECONDS, len(text) * SECONDS_PER_CHARACTER))


def synthesize(text: str, sample_rate: int, pitch: float = BOT_PITCH_HZ) -> npt.NDArray[np.int16]:
    """Harmonics of ``pitch`` under a syllable-rate envelope, as long as ``text`` would take to say."""
    n = round(speech_duration(text) * sample_rate)
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * pitch * t
    voice = np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)
    envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 3.0 * t))
    ramp = np.clip(np.minimum(t, t[::-1]) / 0.015, 0.0, 1.0)
    signal = voice * envelope * ramp
    return (0.35 * 32767 * signal / max(1e-9, float(np.abs(signal).max()))).astype(np.int16)
