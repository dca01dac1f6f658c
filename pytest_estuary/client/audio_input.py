"""Where the client's "microphone" audio comes from: synthetic sounds, a WAV file, or a real microphone.

An input is opened at the rate the voice transport wants, then read in real time: ``read(n)``
never blocks and always returns ``n`` samples, silence when nothing is available (like a
microphone in a quiet room). Any failure to open maps to MICROPHONE_DENIED (ERR-4).
"""

from __future__ import annotations

import asyncio
import threading
import wave
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_estuary import audio
from pytest_estuary.client.errors import ConfigError, ErrorCode, EstuaryError, EventTimeout

__all__ = ["AudioInput", "MicrophoneAudioInput", "Playback", "SyntheticAudioInput", "WavAudioInput", "resample"]


def resample(pcm: audio.PCM16, from_rate: int, to_rate: int) -> audio.PCM16:
    """Linear-interpolation resampling: plenty for speech-like test audio."""
    if from_rate == to_rate or len(pcm) == 0:
        return pcm.astype(np.int16)
    count = round(len(pcm) * to_rate / from_rate)
    positions = np.arange(count) * (from_rate / to_rate)
    out: audio.PCM16 = np.round(np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64))).astype(np.int16)
    return out


class AudioInput(ABC):
    """PCM16 mono frames for the voice transport. Subclasses implement ``_open``/``_read``/``_close``."""

    def __init__(self) -> None:
        self._rate: int | None = None
        self.samples_read = 0

    @property
    def is_open(self) -> bool:
        return self._rate is not None

    @property
    def sample_rate(self) -> int | None:
        """The rate it was opened at (None while closed)."""
        return self._rate

    async def open(self, sample_rate: int) -> None:
        """Start producing audio at ``sample_rate``; any failure → EstuaryError(MICROPHONE_DENIED)."""
        if self._rate is not None:
            raise EstuaryError(ErrorCode.MICROPHONE_DENIED, f"{type(self).__name__} is already open (in use)")
        try:
            await self._open(sample_rate)
        except EstuaryError:
            raise
        except Exception as exc:
            raise EstuaryError(
                ErrorCode.MICROPHONE_DENIED, f"{type(self).__name__} could not be opened: {exc}"
            ) from exc
        self._rate = sample_rate

    def read(self, samples: int) -> audio.PCM16:
        """Exactly ``samples`` samples now (silence-padded); zeros while closed."""
        if self._rate is None:
            return np.zeros(samples, dtype=np.int16)
        out = self._read(samples)
        self.samples_read += samples
        return out

    async def close(self) -> None:
        """Stop producing audio; safe to call twice."""
        if self._rate is None:
            return
        self._rate = None
        await self._close()

    @abstractmethod
    async def _open(self, sample_rate: int) -> None: ...

    @abstractmethod
    def _read(self, samples: int) -> audio.PCM16: ...

    async def _close(self) -> None:
        return None


@dataclass
class _Segment:
    pcm: audio.PCM16
    rate: int
    done: asyncio.Future[None] | None = None
    position: int = 0
    converted_to: int | None = field(default=None)


class Playback:
    """What ``SyntheticAudioInput.say`` returns: awaiting it waits (bounded) until the audio was read."""

    def __init__(self, source: AudioInput, segment: _Segment, timeout: float) -> None:
        self._source, self._segment, self.timeout = source, segment, timeout

    @property
    def done(self) -> bool:
        return self._segment.done is not None and self._segment.done.done()

    async def wait(self) -> None:
        segment = self._segment
        assert segment.done is not None
        try:
            await asyncio.wait_for(asyncio.shield(segment.done), self.timeout)
        except TimeoutError:
            state = "open" if self._source.is_open else "closed (is voice running?)"
            seconds = len(segment.pcm) / (segment.converted_to or segment.rate)
            raise EventTimeout(
                f"say(): {seconds:.2f} s of audio to be read out",
                self.timeout,
                [f"the input {state}", f"{segment.position} of {len(segment.pcm)} samples read"],
            ) from None

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()


class SyntheticAudioInput(AudioInput):
    """Silence unless told to play something: ``play(pcm)`` queues audio, ``await say(pcm)`` waits
    until it has been read out in full (default: ``audio.utterance(pitch=150)``).

    Args:
        audio_data: mono PCM16 to queue at once (read out as soon as voice starts), or None.
        sample_rate: the rate ``audio_data`` was recorded at; it is resampled to the transport's rate.
    """

    def __init__(self, audio_data: audio.PCM16 | None = None, sample_rate: int = 48000) -> None:
        super().__init__()
        self._queue: deque[_Segment] = deque()
        if audio_data is not None:
            self.play(audio_data, sample_rate)

    @property
    def pending_seconds(self) -> float:
        """Audio queued but not yet read (at the rate each segment came in)."""
        return sum((len(s.pcm) - s.position) / (s.converted_to or s.rate) for s in self._queue)

    def play(self, pcm: audio.PCM16, sample_rate: int = 48000) -> None:
        """Queue ``pcm`` (recorded at ``sample_rate``) to be read after what is already queued."""
        self._check(pcm, sample_rate)
        self._queue.append(_Segment(np.asarray(pcm, dtype=np.int16), sample_rate))

    def say(self, pcm: audio.PCM16 | None = None, sample_rate: int = 48000, timeout: float | None = None) -> Playback:
        """Queue ``pcm`` now (default ``audio.utterance(pitch=150)``); ``await`` the result to wait
        until it has all been read, i.e. sent in real time. Not awaiting it is fine."""
        if pcm is None:
            pcm = audio.utterance(sample_rate=sample_rate, pitch=150)
        self._check(pcm, sample_rate)
        done = asyncio.get_running_loop().create_future()
        segment = _Segment(np.asarray(pcm, dtype=np.int16), sample_rate, done)
        self._queue.append(segment)
        bound = timeout if timeout is not None else self.pending_seconds + 10.0
        return Playback(self, segment, bound)

    @staticmethod
    def _check(pcm: Any, sample_rate: int) -> None:
        if not isinstance(pcm, np.ndarray) or pcm.ndim != 1:
            raise ConfigError("pcm", "a 1-D numpy int16 array (mono PCM16)", type(pcm).__name__)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError("sample_rate", "a positive int (Hz)", sample_rate)

    async def _open(self, sample_rate: int) -> None:
        return None

    def _read(self, samples: int) -> audio.PCM16:
        assert self._rate is not None
        out = np.zeros(samples, dtype=np.int16)
        filled = 0
        while filled < samples and self._queue:
            head = self._queue[0]
            if head.converted_to != self._rate:
                head.pcm = resample(head.pcm[head.position :], head.converted_to or head.rate, self._rate)
                head.position, head.converted_to = 0, self._rate
            take = min(samples - filled, len(head.pcm) - head.position)
            out[filled : filled + take] = head.pcm[head.position : head.position + take]
            filled += take
            head.position += take
            if head.position >= len(head.pcm):
                self._queue.popleft()
                if head.done is not None and not head.done.done():
                    head.done.set_result(None)
        return out


class WavAudioInput(AudioInput):
    """A mono 16-bit WAV file, read once in real time, then silence. ``finished`` tells when it is out.

    Args:
        path: the WAV file (any rate: resampled); read when voice starts, so a missing or
            unsuitable file is MICROPHONE_DENIED at ``start_voice()``.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._pcm = np.zeros(0, dtype=np.int16)
        self._position = 0

    @property
    def finished(self) -> bool:
        return self.is_open and self._position >= len(self._pcm)

    async def _open(self, sample_rate: int) -> None:
        with wave.open(str(self.path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise ValueError(
                    f"{self.path}: expected mono 16-bit PCM, got {wav.getnchannels()} channel(s) of "
                    f"{wav.getsampwidth() * 8} bit"
                )
            pcm = audio.from_bytes(wav.readframes(wav.getnframes()))
            rate = wav.getframerate()
        self._pcm, self._position = resample(pcm, rate, sample_rate), 0

    def _read(self, samples: int) -> audio.PCM16:
        out = np.zeros(samples, dtype=np.int16)
        take = self._pcm[self._position : self._position + samples]
        out[: len(take)] = take
        self._position += len(take)
        return out


class MicrophoneAudioInput(AudioInput):
    """A real microphone through the optional ``sounddevice`` package (``pytest-estuary[microphone]``).

    Args:
        device: a ``sounddevice`` input device (index or name), or None for the system default.
    """

    def __init__(self, device: int | str | None = None) -> None:
        super().__init__()
        self.device = device
        self._stream: Any = None
        self._lock = threading.Lock()
        self._buffer: deque[audio.PCM16] = deque()
        self._buffered = 0

    async def _open(self, sample_rate: int) -> None:
        try:
            import sounddevice  # optional dependency; its import may also fail loading PortAudio
        except (ImportError, OSError) as exc:
            raise EstuaryError(
                ErrorCode.MICROPHONE_DENIED,
                f"the microphone needs the 'sounddevice' package (pip install 'pytest-estuary[microphone]'): {exc}",
            ) from exc

        def callback(indata: Any, _frames: int, _time: Any, _status: Any) -> None:  # PortAudio's thread
            with self._lock:
                self._buffer.append(np.asarray(indata[:, 0], dtype=np.int16).copy())
                self._buffered += len(indata)
                while self._buffered > sample_rate * 2:  # keep at most 2 s: a stalled reader drops old audio
                    self._buffered -= len(self._buffer.popleft())

        stream = sounddevice.InputStream(
            samplerate=sample_rate, channels=1, dtype="int16", device=self.device, callback=callback
        )
        stream.start()
        self._stream = stream

    def _read(self, samples: int) -> audio.PCM16:
        out = np.zeros(samples, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < samples and self._buffer:
                head = self._buffer[0]
                take = min(samples - filled, len(head))
                out[filled : filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._buffer.popleft()
                else:
                    self._buffer[0] = head[take:]
                self._buffered -= take
        return out

    async def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
        with self._lock:
            self._buffer.clear()
            self._buffered = 0
