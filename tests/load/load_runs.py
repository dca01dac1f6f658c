"""Runs ``estuary-load`` (the console script's module) in a child process, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_estuary.load.gate import PhaseStats, read_final

__all__ = ["LoadRun", "estuary_load", "start_estuary_load"]

RUN_TIMEOUT = 150.0


@dataclass
class LoadRun:
    status: int
    out: Path
    stdout: str
    stderr: str

    def stats(self) -> dict[str, PhaseStats]:
        return read_final(self.out / "final_stats.json")[0]

    def failures(self) -> list[tuple[str, str, int]]:
        """(phase, message, occurrences)."""
        return read_final(self.out / "final_stats.json")[1]

    def gate(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.out / "gate.json").read_text())
        return document


def _command(url: str | None, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_estuary.load.cli", *(["--estuary-url", url] if url else []), *args]


def estuary_load(url: str | None, api_key: str | None, out: Path, *args: str, timeout: float = RUN_TIMEOUT) -> LoadRun:
    env = {k: v for k, v in os.environ.items() if k not in ("ESTUARY_API_KEY", "ESTUARY_URL", "GITHUB_STEP_SUMMARY")}
    if api_key is not None:
        env["ESTUARY_API_KEY"] = api_key
    done = subprocess.run(
        _command(url, "--out", str(out), *args), env=env, capture_output=True, text=True, timeout=timeout
    )
    return LoadRun(done.returncode, out, done.stdout, done.stderr)


def start_estuary_load(url: str, api_key: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``estuary-load`` in the background, its output to ``log`` (no pipe left to fill or to close)."""
    env = dict(os.environ, ESTUARY_API_KEY=api_key)
    with log.open("wb") as sink:
        return subprocess.Popen(_command(url, *args), env=env, stdout=sink, stderr=subprocess.STDOUT)
