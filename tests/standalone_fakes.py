"""Standalone fake servers (``python -m fake_server``) in processes of their own, for live runs."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
from typing import IO, Any

from pytest_estuary.livekit_server import LiveKitCredentials

__all__ = ["STARTUP_TIMEOUT", "StandaloneFakes"]

STARTUP_TIMEOUT = 20.0


class StandaloneFakes:
    """Starts ``python -m fake_server`` processes against one LiveKit server; ``stop_all()`` ends them."""

    def __init__(self, livekit: LiveKitCredentials) -> None:
        self.livekit = livekit
        self.processes: list[subprocess.Popen[str]] = []
        self.logs: list[IO[str]] = []

    def start(
        self, misbehave: dict[str, Any] | None = None, transcripts: list[str] | None = None, *extra: str
    ) -> dict[str, Any]:
        command = [sys.executable, "-m", "fake_server", "--misbehave", json.dumps(misbehave or {})]
        if transcripts is not None:  # none given: the server runs as a user starts it, without the option
            command += ["--transcripts", json.dumps(transcripts)]
        command += extra
        # The credentials travel in the environment: not on a command line (ps shows those),
        # and a secret that starts with "-" would read as an option there.
        env = dict(os.environ, LIVEKIT_URL=self.livekit.url, LIVEKIT_API_KEY=self.livekit.api_key,
                   LIVEKIT_API_SECRET=self.livekit.api_secret)  # fmt: skip
        # stderr to a file: a pipe nobody reads would block a chatty server once it is full.
        log = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        self.logs.append(log)
        self.processes.append(process)
        info: dict[str, Any] = json.loads(_first_line(process, STARTUP_TIMEOUT, log))
        return info

    __call__ = start

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        for log in self.logs:
            log.close()
        self.processes.clear()
        self.logs.clear()


def _first_line(process: subprocess.Popen[str], timeout: float, log: IO[str]) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise AssertionError(f"python -m fake_server printed nothing within {timeout:.0f} s")
    line = process.stdout.readline()
    if not line:
        log.seek(0)
        stderr = log.read()
        raise AssertionError(f"python -m fake_server exited with {process.wait(5)}: {stderr[-2000:]}")
    return line
