"""The speech a voice session says: the conformance suite's recordings (real words, known text)."""

from __future__ import annotations

import importlib.util
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_estuary import audio

__all__ = ["Recording", "default_directory", "load_recordings"]


@dataclass(frozen=True)
class Recording:
    """One utterance: mono PCM16 at ``sample_rate`` and the words it says."""

    name: str
    text: str
    pcm: audio.PCM16
    sample_rate: int


def default_directory() -> Path:
    """``conformance/utterances`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec("conformance")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'conformance' package (shipped with pytest-estuary) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "utterances"


def load_recordings(directory: Path | None = None) -> list[Recording]:
    """Every ``NAME.wav`` (mono PCM16) with its ``NAME.txt`` in ``directory``, sorted by name."""
    folder = directory or default_directory()
    found: list[Recording] = []
    for wav in sorted(folder.glob("*.wav")):
        text_file = wav.with_suffix(".txt")
        if not text_file.is_file():
            continue
        with wave.open(str(wav), "rb") as reader:
            if reader.getsampwidth() != 2 or reader.getnchannels() != 1:
                raise ValueError(
                    f"{wav}: expected mono 16-bit PCM, got {reader.getnchannels()} channel(s) "
                    f"of {8 * reader.getsampwidth()} bits"
                )
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.int16)
            found.append(Recording(wav.stem, text_file.read_text().strip(), pcm, reader.getframerate()))
    if not found:
        raise FileNotFoundError(f"no recordings (NAME.wav + NAME.txt) in {folder}")
    return found
