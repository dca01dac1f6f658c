"""Shared by the project's own tests: pytester, and standalone fake servers in their own process."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials, cache_dir

pytest_plugins = ["pytester"]

# pytester gives inner runs a fresh HOME; they must still find the livekit-server build.
os.environ.setdefault("PYTEST_ESTUARY_CACHE", str(cache_dir()))

STARTUP_TIMEOUT = 20.0


@pytest.fixture
def standalone_fake(livekit_server: LiveKitCredentials) -> Iterator[Callable[..., dict[str, Any]]]:
    """``standalone_fake(misbehave={...}, transcripts=[...])`` starts ``python -m fake_server`` and
    returns what it printed (url, api_key, control_token); every process is stopped at teardown."""
    processes: list[subprocess.Popen[str]] = []

    def start(misbehave: dict[str, Any] | None = None, transcripts: list[str] | None = None) -> dict[str, Any]:
        command = [
            sys.executable, "-m", "fake_server",
            "--misbehave", json.dumps(misbehave or {}),
            "--transcripts", json.dumps(transcripts or []),
        ]  # fmt: skip
        # The credentials travel in the environment: not on a command line (ps shows those),
        # and a secret that starts with "-" would read as an option there.
        env = dict(os.environ, LIVEKIT_URL=livekit_server.url, LIVEKIT_API_KEY=livekit_server.api_key,
                   LIVEKIT_API_SECRET=livekit_server.api_secret)  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        processes.append(process)
        info: dict[str, Any] = json.loads(_first_line(process, STARTUP_TIMEOUT))
        return info

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise AssertionError(f"python -m fake_server printed nothing within {timeout:.0f} s")
    line = process.stdout.readline()
    if not line:
        stderr = process.stderr.read() if process.stderr else ""
        raise AssertionError(f"python -m fake_server exited with {process.wait(5)}: {stderr[-2000:]}")
    return line
