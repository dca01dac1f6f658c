"""The server's side of the bot worker process: start it, send it requests, hear what its bots hear.

The bots themselves (fake_server.bot) run in ``python -m fake_server.bot_worker``; see that
module for why, and for the line protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from fake_server.fingerprint import Fingerprint
from fake_server.stt import SttEvent
from fake_server.voice_synth import MAX_SECONDS

__all__ = ["BotError", "BotHost", "OnSpeech", "RemoteBot"]

log = logging.getLogger("fake_server.bot_host")
JOIN_BOUND = 15.0  # the bot's own connect bound is 10 s
SPEAK_BOUND = MAX_SECONDS + 10.0
LEAVE_BOUND = 10.0
EXIT_BOUND = 10.0
SPARE_DELAY = 2.0
LINE_LIMIT = 2**20  # a heard line carries a fingerprint of up to ~40 KB
OnSpeech = Callable[[SttEvent], Awaitable[None]]


class BotError(RuntimeError):
    """A bot request failed, or the worker process is gone; the message says which and why."""


class RemoteBot:
    """One bot in the worker: ``speak`` and ``leave``, like an in-process bot."""

    def __init__(self, host: BotHost, name: str, identity: str) -> None:
        self.host = host
        self.name = name
        self.identity = identity
        self._process = host._process

    @property
    def alive(self) -> bool:
        """False once the worker it lived in is gone (a replacement worker does not know it)."""
        return self._process is not None and self._process is self.host._process and self._process.returncode is None

    async def serve(self, listen_to: str, on_speech: OnSpeech | None, attributes: dict[str, str]) -> None:
        """A standby bot starts serving a client: it hears ``listen_to`` and shows ``attributes``."""
        if on_speech is not None:
            self.host.listeners[self.name] = on_speech
        await self.host.request(
            "serve", JOIN_BOUND, bot=self.name, listen_to=listen_to, deaf=on_speech is None, attributes=attributes
        )

    async def speak(self, text: str, message_id: str = "") -> None:
        """Say ``text`` on the bot's track, showing ``message_id`` meanwhile; returns when it was said
        (or the bot left meanwhile)."""
        await self.host.request("speak", SPEAK_BOUND, bot=self.name, text=text, message_id=message_id)

    async def leave(self) -> None:
        self.host.listeners.pop(self.name, None)
        with contextlib.suppress(BotError):  # a worker that is gone took its bots with it
            await self.host.request("leave", LEAVE_BOUND, bot=self.name)


class BotHost:
    """Starts the worker on :meth:`start` (again if it died) and matches replies to requests.

    ``on_exit(code)`` runs when the worker exits by itself (killed, crashed), not on :meth:`aclose`.
    With ``spare``, a second worker waits, imports done, ``SPARE_DELAY`` after the first started: a
    worker that dies is replaced at once (a fresh one needs 1-3 s to import livekit on 2 busy cores).
    """

    def __init__(self, spare: bool = True) -> None:
        self.on_exit: Callable[[int], Awaitable[None]] | None = None
        self.spare = spare
        self._spare: asyncio.subprocess.Process | None = None
        self._spare_task: asyncio.Task[None] | None = None
        self._closed = False
        self.listeners: dict[str, OnSpeech] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._names = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the worker unless it runs (the spare if there is one); requests written before it is
        up wait in the pipe."""
        if self._closed or (self._process is not None and self._process.returncode is None):
            return
        spare, self._spare = self._spare, None
        self._process = spare if spare is not None and spare.returncode is None else await self._spawn()
        self._reader = asyncio.ensure_future(self._read(self._process))
        if self.spare and (self._spare_task is None or self._spare_task.done()):
            self._spare_task = asyncio.ensure_future(self._keep_spare())

    @staticmethod
    async def _spawn() -> asyncio.subprocess.Process:
        env = dict(os.environ)
        # The worker must import this very fake_server, wherever the parent found it.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fake_server.bot_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env, limit=LINE_LIMIT,
        )  # fmt: skip

    async def _keep_spare(self) -> None:
        """A spare worker, started after the first settled (not competing with its start)."""
        await asyncio.sleep(SPARE_DELAY)
        if not self._closed and (self._spare is None or self._spare.returncode is not None):
            self._spare = await self._spawn()

    @property
    def spare_pid(self) -> int | None:
        spare = self._spare
        return spare.pid if spare is not None and spare.returncode is None else None

    async def join(
        self, *, url: str, token: str, identity: str, listen_to: str | None, on_speech: OnSpeech | None, pitch: float
    ) -> RemoteBot:
        """A bot in the room of ``token``, publishing its voice; ``on_speech`` hears ``listen_to``.

        With ``listen_to`` None it is a standby bot, waiting for :meth:`RemoteBot.serve`.
        """
        await self.start()
        bot = RemoteBot(self, f"bot{next(self._names)}", identity)
        if on_speech is not None and listen_to is not None:
            self.listeners[bot.name] = on_speech
        try:
            await self.request(
                "join", JOIN_BOUND, bot=bot.name, url=url, token=token, identity=identity,
                listen_to=listen_to, deaf=on_speech is None, pitch=pitch,
            )  # fmt: skip
        except BaseException:
            # Also when we gave up waiting: the worker may still get the bot in, so it must leave.
            self._background(bot.leave())
            raise
        return bot

    def _background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request(self, op: str, bound: float, **fields: Any) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise BotError(f"bot {op}: the bot worker is not running")
        request_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._pending[request_id] = reply
        try:
            process.stdin.write(json.dumps({"id": request_id, "op": op, **fields}).encode() + b"\n")
            await process.stdin.drain()
            await asyncio.wait_for(reply, bound)
        except TimeoutError:
            raise BotError(f"bot {op}: no reply from the bot worker within {bound:.0f} s") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise BotError(f"bot {op}: the bot worker is gone ({exc})") from exc
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                log.error("ignoring a bot worker line that is not JSON: %r", line[:80])
                continue
            if "heard" in message:
                listener = self.listeners.get(message["bot"])
                if listener is not None:
                    try:
                        await listener(_stt_event(message["heard"]))
                    except Exception:  # one session's trouble must not stop the replies to all
                        log.exception("handling what bot %s heard", message["bot"])
                continue
            reply = self._pending.get(message["id"])
            if reply is None or reply.done():
                continue
            if message.get("ok"):
                reply.set_result(None)
            else:
                reply.set_exception(BotError(message.get("error", "the bot worker gave no reason")))
        code = await process.wait()
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(BotError(f"the bot worker exited (code {code})"))
        if process is not self._process:
            return  # closed by aclose (or already replaced): nothing to recover
        log.warning("the bot worker exited with code %s; starting a new one", code)
        await self.start()
        if self.on_exit is not None:
            self._background(self.on_exit(code))

    async def aclose(self) -> None:
        """Close the workers' stdin: their bots leave and they exit; killed if that takes too long."""
        self._closed = True
        if self._spare_task is not None:
            self._spare_task.cancel()
            await asyncio.gather(self._spare_task, return_exceptions=True)
        process, reader, spare = self._process, self._reader, self._spare
        self._process = self._reader = self._spare = None
        self.listeners.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(_end(p) for p in (process, spare) if p is not None))
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)


def _stt_event(heard: dict[str, Any]) -> SttEvent:
    kind: Literal["start", "end"] = "end" if heard.get("kind") == "end" else "start"
    return SttEvent(kind, float(heard.get("seconds", 0.0)), Fingerprint.from_json(heard.get("fingerprint")))


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), EXIT_BOUND)
    except TimeoutError:
        log.warning("the bot worker did not exit within %.0f s of its stdin closing; killing it", EXIT_BOUND)
        process.kill()
        await process.wait()
