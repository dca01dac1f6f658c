"""Known recordings the fake STT recognises: WAV files with their transcripts, matched by fingerprint.

The conformance suite's shipped utterances are found as data next to the installed ``conformance``
package (nothing of it is imported); users add their own directories (``NAME.wav`` + ``NAME.txt``)
or single recordings. Each recording is segmented by the same energy detector the STT runs, so a
recording and its replay through any transport are cut alike.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fake_server.fingerprint import MIN_CORRELATION, Fingerprint
from fake_server.stt import UtteranceDetector

__all__ = ["KnownUtterance", "UtteranceLibrary", "read_wav", "suite_utterances"]

log = logging.getLogger("fake_server.utterances")
MAX_WAV_SECONDS = 60.0


@dataclass(frozen=True)
class KnownUtterance:
    name: str
    transcript: str
    fingerprint: Fingerprint


def suite_utterances() -> Path | None:
    """``conformance/utterances`` of the installed suite, found without importing it; None if absent."""
    try:
        spec = importlib.util.find_spec("conformance")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / "utterances"
        if candidate.is_dir() and any(candidate.glob("*.wav")):
            return candidate
    return None


def read_wav(source: Path | bytes) -> tuple[npt.NDArray[np.int16], int]:
    """PCM16 of a WAV file (a path, or the file's bytes), channels mixed to mono, and its rate."""
    try:
        with wave.open(str(source) if isinstance(source, Path) else io.BytesIO(source), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            if width != 2:
                raise ValueError(f"expected 16-bit PCM, got {width * 8}-bit samples")
            if wav.getnframes() > MAX_WAV_SECONDS * rate:
                raise ValueError(f"longer than {MAX_WAV_SECONDS:.0f} s")
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV file ({exc})") from None
    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1).astype(np.int16)
    return pcm, rate


def utterance_fingerprint(pcm: npt.NDArray[np.int16], sample_rate: int) -> Fingerprint | None:
    """The fingerprint of the longest utterance the STT's detector finds in ``pcm``."""
    detector = UtteranceDetector(sample_rate)
    tail = np.zeros(sample_rate, dtype=np.int16)  # enough quiet to end the last utterance
    found = [e.fingerprint for e in detector.feed(np.concatenate([pcm, tail])) if e.kind == "end" and e.fingerprint]
    return max(found, key=lambda f: f.frames) if found else None


class UtteranceLibrary:
    """Thread-safe: added to from any thread, matched on the server's loop."""

    def __init__(self) -> None:
        self._known: list[KnownUtterance] = []
        self._lock = threading.Lock()

    @property
    def known(self) -> list[KnownUtterance]:
        with self._lock:
            return list(self._known)

    def add(self, transcript: str, pcm: npt.NDArray[np.int16], sample_rate: int, name: str = "") -> KnownUtterance:
        """Register a recording of ``transcript``; ValueError if no utterance can be heard in it."""
        if not isinstance(transcript, str) or not transcript.strip():
            raise ValueError("an utterance needs a non-empty transcript")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        found = utterance_fingerprint(pcm, sample_rate)
        if found is None:
            raise ValueError(f"no utterance heard in the recording of {transcript.strip()!r} (silent or too short)")
        known = KnownUtterance(name or transcript.strip(), transcript.strip(), found)
        with self._lock:
            self._known = [k for k in self._known if k.name != known.name] + [known]
        return known

    def add_wav(self, path: Path, transcript: str | None = None) -> KnownUtterance:
        """``path`` (a WAV file), with ``transcript`` or else the text of the ``.txt`` file beside it."""
        if transcript is None:
            text_file = path.with_suffix(".txt")
            if not text_file.is_file():
                raise ValueError(f"{path}: no transcript {text_file.name} beside it")
            transcript = text_file.read_text(encoding="utf-8").strip()
        try:
            pcm, rate = read_wav(path)
            return self.add(transcript, pcm, rate, name=str(path))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def add_directory(self, directory: Path) -> list[KnownUtterance]:
        """Every ``NAME.wav`` of ``directory`` that has a ``NAME.txt``; ValueError if there is none."""
        if not directory.is_dir():
            raise ValueError(f"{directory}: not a directory")
        pairs = [wav for wav in sorted(directory.glob("*.wav")) if wav.with_suffix(".txt").is_file()]
        if not pairs:
            raise ValueError(f"{directory}: no NAME.wav with a NAME.txt transcript beside it")
        return [self.add_wav(wav) for wav in pairs]

    def recognise(self, heard: Fingerprint | None) -> str | None:
        """The transcript of the known recording ``heard`` matches best, if any matches."""
        if heard is None:
            return None
        scored = [(k.fingerprint.similarity(heard), k) for k in self.known]
        matching = [(score, k) for score, k in scored if score >= MIN_CORRELATION]
        if not matching:
            return None
        score, best = max(matching, key=lambda pair: pair[0])
        log.debug("recognised %s (similarity %.3f)", best.name, score)
        return best.transcript
