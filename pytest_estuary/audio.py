"""Synthesis and analysis of PCM16 mono audio, with no client or server imports.

Everything works on ``numpy`` int16 arrays. Synthesis makes sounds whose pitch and timing a
test can detect; analysis answers "was that sound heard" without any speech recogniser.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

__all__ = [
    "PCM16",
    "chunk",
    "concat",
    "dominant_frequency",
    "from_bytes",
    "heard_voice",
    "level_dbfs",
    "rms",
    "silence",
    "speech_like",
    "tone",
    "tone_bursts",
    "utterance",
    "voiced_seconds",
]

PCM16 = npt.NDArray[np.int16]
_FULL_SCALE = 32767.0


def _samples(duration: float, sample_rate: int) -> int:
    if duration < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {duration}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    return round(duration * sample_rate)


def _to_pcm(signal: npt.NDArray[np.float64]) -> PCM16:
    return np.clip(np.round(signal * _FULL_SCALE), -32768, 32767).astype(np.int16)


def silence(duration: float, sample_rate: int = 48000) -> PCM16:
    return np.zeros(_samples(duration, sample_rate), dtype=np.int16)


def tone(frequency: float, duration: float, sample_rate: int = 48000, amplitude: float = 0.3) -> PCM16:
    """A sine at ``frequency`` Hz; ``amplitude`` is a fraction of full scale."""
    n = _samples(duration, sample_rate)
    t = np.arange(n) / sample_rate
    return _to_pcm(amplitude * np.sin(2 * np.pi * frequency * t))


def speech_like(duration: float, sample_rate: int = 48000, pitch: float = 150.0, amplitude: float = 0.3) -> PCM16:
    """A voiced sound: harmonics of ``pitch`` with a gentle contour and 4 Hz syllable envelope.

    The fundamental stays within ±5 % of ``pitch``, so :func:`dominant_frequency` finds it.
    """
    n = _samples(duration, sample_rate)
    t = np.arange(n) / sample_rate
    contour = pitch * (1.0 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(contour) / sample_rate
    voice = sum((0.6**k) * np.sin((k + 1) * phase) for k in range(4))
    syllables = 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 2.0 * t))
    fade = np.minimum(1.0, np.minimum(t, t[::-1] if n else t) / 0.02) if n else t
    signal = voice * syllables * fade
    peak = float(np.max(np.abs(signal))) if n else 1.0
    return _to_pcm(amplitude * signal / (peak or 1.0))


def utterance(
    duration: float = 1.0,
    sample_rate: int = 48000,
    pitch: float = 150.0,
    lead: float = 0.2,
    tail: float = 0.8,
) -> PCM16:
    """Silence, a speech-like burst, then enough silence for an end-of-utterance detector."""
    return concat(silence(lead, sample_rate), speech_like(duration, sample_rate, pitch), silence(tail, sample_rate))


def tone_bursts(frequency: float, count: int, burst: float, gap: float, sample_rate: int = 48000) -> PCM16:
    """``count`` bursts of a tone separated by silence (each burst one detectable utterance)."""
    parts: list[PCM16] = []
    for _ in range(count):
        parts += [tone(frequency, burst, sample_rate), silence(gap, sample_rate)]
    return concat(*parts)


def concat(*parts: PCM16) -> PCM16:
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, dtype=np.int16)


def from_bytes(data: bytes) -> PCM16:
    """Raw PCM16 little-endian mono bytes as samples; an odd byte count is an error."""
    if len(data) % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def chunk(pcm: PCM16, sample_rate: int, frame_ms: int = 10) -> Iterator[PCM16]:
    """Consecutive frames of ``frame_ms``; the last one is zero-padded to full length."""
    size = sample_rate * frame_ms // 1000
    if size <= 0:
        raise ValueError(f"frame of {frame_ms} ms at {sample_rate} Hz holds no sample")
    for start in range(0, len(pcm), size):
        frame = pcm[start : start + size]
        if len(frame) < size:
            frame = np.concatenate([frame, np.zeros(size - len(frame), dtype=np.int16)])
        yield frame


def rms(pcm: PCM16) -> float:
    """Root-mean-square level as a fraction of full scale (0.0 for empty input)."""
    if len(pcm) == 0:
        return 0.0
    return float(np.sqrt(np.mean((pcm.astype(np.float64) / _FULL_SCALE) ** 2)))


def level_dbfs(pcm: PCM16) -> float:
    level = rms(pcm)
    return float(20 * np.log10(level)) if level > 0 else float("-inf")


def dominant_frequency(pcm: PCM16, sample_rate: int) -> float:
    """The frequency (Hz) of the strongest spectral peak, windowed; 0.0 for silence."""
    if len(pcm) < 2 or rms(pcm) == 0.0:
        return 0.0
    signal = pcm.astype(np.float64) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0.0
    freqs = np.fft.rfftfreq(len(pcm), 1.0 / sample_rate)
    return float(freqs[int(np.argmax(spectrum))])


def voiced_seconds(pcm: PCM16, sample_rate: int, threshold_dbfs: float = -40.0, frame_ms: int = 20) -> float:
    """How many seconds of ``pcm`` are louder than ``threshold_dbfs`` (frame by frame)."""
    voiced = sum(1 for frame in chunk(pcm, sample_rate, frame_ms) if level_dbfs(frame) > threshold_dbfs)
    return voiced * frame_ms / 1000.0


def heard_voice(
    pcm: PCM16,
    sample_rate: int,
    pitch: float,
    *,
    tolerance_hz: float = 15.0,
    min_seconds: float = 0.3,
    threshold_dbfs: float = -40.0,
) -> bool:
    """True when ``pcm`` holds ≥ ``min_seconds`` of sound whose dominant frequency is ``pitch``.

    Only the loud frames are analysed, so leading silence or jitter-buffer gaps don't matter;
    the 2nd and 3rd harmonics count too, since codecs may weaken a low fundamental.
    """
    frame_ms = 20
    loud = [f for f in chunk(pcm, sample_rate, frame_ms) if level_dbfs(f) > threshold_dbfs]
    if len(loud) * frame_ms / 1000.0 < min_seconds:
        return False
    found = dominant_frequency(concat(*loud), sample_rate)
    return any(abs(found - pitch * k) <= tolerance_hz * k for k in (1, 2, 3))
