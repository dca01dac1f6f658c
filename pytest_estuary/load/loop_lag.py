"""How late the engine's event loop runs: a load generator that stalls sends broken speech.

The client's microphone pump feeds LiveKit's audio source 10 ms at a time, and that source holds
only ``SOURCE_QUEUE_MS`` (100 ms). A loop that stalls longer lets it run dry: WebRTC sends silence in
the middle of the words, and a recogniser hears two fragments. A transcript that does not match
after such a stall is the generator's failure (ERROR), not the server's (LK-7 / WS-2).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from pytest_estuary.client.livekit_voice import SOURCE_QUEUE_MS

__all__ = ["MONITOR", "STALL_LIMIT", "LoopLag"]

STALL_LIMIT = SOURCE_QUEUE_MS / 1000  # seconds: a longer stall empties the audio source's queue
PERIOD = 0.02


class LoopLag:
    """Samples the running loop's lateness every 20 ms; keeps the last minutes of samples."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=30_000)  # (monotonic t, lateness s)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(PERIOD)
            now = time.monotonic()
            self._samples.append((now, max(0.0, now - before - PERIOD)))

    def worst_since(self, since: float) -> float:
        """The largest lateness (s) seen since ``since`` (monotonic); 0 when not watching."""
        return max((lag for t, lag in reversed(self._samples) if t >= since), default=0.0)


MONITOR = LoopLag()
