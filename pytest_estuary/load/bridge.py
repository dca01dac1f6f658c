"""The gevent side of the bridge: a Locust process's one session engine, and its results per session.

Imported only by the Locust files (it needs gevent); see :mod:`pytest_estuary.load.engine` for why
the sessions run in a process of their own. One reader greenlet reads the engine's lines and puts
each into the queue of the session it belongs to; a user greenlet blocks only on its own queue,
which yields to the others (gevent), with a bound.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

import gevent
from gevent.event import Event
from gevent.queue import Empty, Queue

__all__ = ["SILENCE_TIMEOUT", "Engine", "PhaseResult"]

SILENCE_TIMEOUT = 60.0  # a session reports a phase at least this often (its longest bound is 15 s)
START_TIMEOUT = 60.0  # importing livekit.rtc and numpy on a loaded machine
PhaseResult = tuple[str, float, str | None]


class Engine:
    """``python -m pytest_estuary.load.engine``, started on first use, stopped by :meth:`close`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._queues: dict[int, Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._dead: str | None = None
        self._ready = Event()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pytest_estuary.load.engine"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        gevent.spawn(self._read, self._process.stdout)
        if not self._ready.wait(START_TIMEOUT):
            self._dead = self._dead or f"the session engine did not start within {START_TIMEOUT:g} s"

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            message = json.loads(line)
            if message.get("ready"):
                self._ready.set()
                continue
            queue = self._queues.get(message["id"])
            if queue is not None:
                queue.put(message)
        code = self._process.wait() if self._process is not None else None
        self._dead = f"the session engine exited (status {code})"
        self._ready.set()
        for queue in self._queues.values():
            queue.put({"done": True, "lost": self._dead})

    def run(self, kind: str) -> Iterator[PhaseResult]:
        """Run one session of ``kind``; yields (phase, seconds, failure) as the engine reports them."""
        if self._process is None:
            self._start()
        if self._dead is not None:
            yield ("session", 0.0, f"ERROR: {self._dead}")
            return
        request_id = next(self._ids)
        queue: Queue[dict[str, Any]] = Queue()
        self._queues[request_id] = queue
        try:
            assert self._process is not None and self._process.stdin is not None
            self._process.stdin.write(json.dumps({"id": request_id, "kind": kind}) + "\n")
            self._process.stdin.flush()
            while True:
                try:
                    message = queue.get(timeout=SILENCE_TIMEOUT)
                except Empty:
                    yield (
                        "session",
                        SILENCE_TIMEOUT,
                        f"ERROR: the session engine said nothing for {SILENCE_TIMEOUT:g} s",
                    )
                    return
                if message.get("done"):
                    if message.get("lost"):
                        yield ("session", 0.0, f"ERROR: {message['lost']}")
                    return
                yield (message["phase"], float(message["seconds"]), message.get("failure"))
        finally:
            del self._queues[request_id]

    def close(self, timeout: float = 75.0) -> None:
        """EOF to the engine: it lets its sessions finish, then exits; killed after ``timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
