"""Acoustic fingerprints of utterances: what lets the fake STT recognise a known recording.

A fingerprint is the utterance's spectral envelope over time: every ``HOP_S``, the log energies in
``BANDS`` mel-spaced bands between 150 Hz and 3.8 kHz (bands in Hz, so any sample rate gives the
same ones), relative to the loudest and floored ``FLOOR_DECADES`` below it (the level the audio came
at changes nothing). Two fingerprints match when, at the best shift of up to ``MAX_SHIFT_S`` (where
an energy detector cuts an utterance depends on its level, and a listener that subscribed late
misses its start), their per-band mean-removed envelopes correlate by ``MIN_CORRELATION`` or more.
Resampling (16/24/48 kHz) and the Opus/WebRTC path keep time and the envelope; a tone or noise
never looks like a spoken sentence (the suite's recordings score ≤ 0.3 against each other, a tone
≤ 0.2, a recording against itself cut by up to 0.5 s: 1.0).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BANDS", "Fingerprint", "fingerprint"]

BANDS = 20
LOW_HZ, HIGH_HZ = 150.0, 3800.0
WINDOW_S, HOP_S = 0.040, 0.020
MAX_SECONDS = 6.0  # the start of a longer utterance is enough to tell it
TRIM_DB = 30.0
FLOOR_DECADES = 4.0  # 40 dB
MAX_SHIFT_S = 0.6  # also a start the listener missed (the bot subscribed a moment late)
MIN_OVERLAP = 0.55
MIN_CORRELATION = 0.8


@dataclass(frozen=True)
class Fingerprint:
    """``values``: frames x ``BANDS`` log energies (decades below the loudest), flattened."""

    values: tuple[float, ...]

    @property
    def frames(self) -> int:
        return len(self.values) // BANDS

    @property
    def seconds(self) -> float:
        return self.frames * HOP_S

    def similarity(self, other: Fingerprint) -> float:
        """The best correlation over shifts of up to ``MAX_SHIFT_S`` with ``MIN_OVERLAP`` of both kept."""
        a = np.asarray(self.values).reshape(-1, BANDS)
        b = np.asarray(other.values).reshape(-1, BANDS)
        longest = max(len(a), len(b))
        limit = round(MAX_SHIFT_S / HOP_S)
        best = 0.0
        for shift in range(-limit, limit + 1):
            x, y = a[max(0, shift) :], b[max(0, -shift) :]
            n = min(len(x), len(y))
            if n < MIN_OVERLAP * longest or n < 4:
                continue
            x, y = x[:n] - x[:n].mean(axis=0), y[:n] - y[:n].mean(axis=0)
            denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
            if denominator > 0:
                best = max(best, float((x * y).sum()) / denominator)
        return best

    def matches(self, other: Fingerprint) -> bool:
        return self.similarity(other) >= MIN_CORRELATION

    def as_json(self) -> list[float]:
        return [round(v, 2) for v in self.values]

    @classmethod
    def from_json(cls, data: object) -> Fingerprint | None:
        """The inverse of :meth:`as_json`; None for anything else (a worker line is data, not trusted)."""
        if not isinstance(data, list) or not data or len(data) % BANDS:
            return None
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in data):
            return None
        return cls(tuple(float(v) for v in data))


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _band_edges() -> npt.NDArray[np.float64]:
    mels = np.linspace(_mel(LOW_HZ), _mel(HIGH_HZ), BANDS + 1)
    return np.asarray(700.0 * (10 ** (mels / 2595.0) - 1.0), dtype=np.float64)


def fingerprint(pcm: npt.NDArray[np.int16], sample_rate: int) -> Fingerprint | None:
    """The fingerprint of one utterance's PCM16 mono audio; None when there is too little to tell."""
    pcm = pcm[: round(MAX_SECONDS * sample_rate)]
    window, hop = round(WINDOW_S * sample_rate), round(HOP_S * sample_rate)
    if len(pcm) < window + 4 * hop:
        return None
    signal = pcm.astype(np.float64) / 32768.0
    count = 1 + (len(signal) - window) // hop
    frames = np.lib.stride_tricks.sliding_window_view(signal, window)[::hop][:count] * np.hanning(window)
    size = 1 << (window - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n=size, axis=1)) ** 2
    hz = np.fft.rfftfreq(size, 1.0 / sample_rate)
    edges = _band_edges()
    bands = np.stack([power[:, (hz >= lo) & (hz < hi)].sum(axis=1) for lo, hi in itertools.pairwise(edges)], axis=1)
    total = 10 * np.log10(bands.sum(axis=1) + 1e-12)
    loud = np.flatnonzero(total >= total.max() - TRIM_DB)  # trimmed by level relative to the loudest
    energies = np.log10(bands[loud[0] : loud[-1] + 1] + 1e-12)
    if len(energies) < 4:
        return None
    energies = np.maximum(energies - energies.max(), -FLOOR_DECADES)
    return Fingerprint(tuple(energies.ravel().tolist()))
