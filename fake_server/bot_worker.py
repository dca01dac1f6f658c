"""``python -m fake_server.bot_worker``: the process the fake server's bots live in.

livekit.rtc's native layer (its threads, its process-wide state) and the bots' audio work then
stay out of the process that embeds the server, which is usually the test process with clients
of its own: the bots run on the other core instead of competing for that process's GIL, and
neither side's WebRTC can disturb the other's. The server drives them with JSON lines (BotHost).

stdin, one request a line: ``{"id", "op": "join", "bot", "url", "token", "identity",
"listen_to" (null for a standby bot), "deaf", "pitch"}``, ``{"id", "op": "serve", "bot",
"listen_to", "deaf", "attributes"}`` (a standby bot starts serving a client), ``{"id", "op":
"speak", "bot", "text", "message_id"}``, ``{"id", "op": "leave", "bot"}``. stdout: ``{"id", "ok":
true}`` or ``{"id", "error"}`` per request, and ``{"bot", "heard": {"kind", "seconds",
"fingerprint"}}`` for each utterance event a bot hears (fake_server.fingerprint; null at an
utterance's start). End of stdin (the server stopped or died) makes every bot leave, then the
worker exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from fake_server.bot import Bot
from fake_server.stt import SttEvent

__all__ = ["main"]

log = logging.getLogger("fake_server.bot_worker")
_JWT = re.compile(r"eyJ[\w-]*(?:\.[\w-]*){0,2}")


class _RedactJwt(logging.Filter):
    """The native layer logs a refused token in full; no JWT may reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "eyJ" in message:
            record.msg, record.args = _JWT.sub(lambda m: m.group(0)[:4] + "…", message), None
        return True


class Worker:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.bots: dict[str, Bot] = {}
        self.speeches: dict[str, set[asyncio.Task[None]]] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    async def handle(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            op = request["op"]
            if op == "join":
                await self.join(request)
            elif op == "serve":
                await self.serve(request)
            elif op == "speak":
                await self.speak(request["bot"], request["text"], request.get("message_id") or "")
            elif op == "leave":
                await self.leave(request["bot"])
            else:
                raise ValueError(f"unknown op {op!r}")
            reply["ok"] = True
        except Exception as exc:
            reply["error"] = _JWT.sub("…", f"{type(exc).__name__}: {exc}")
        self.send(reply)

    def _hearing(self, name: str, deaf: bool) -> Callable[[SttEvent], Awaitable[None]] | None:
        async def heard(event: SttEvent) -> None:
            fingerprint = event.fingerprint.as_json() if event.fingerprint is not None else None
            self.send(
                {"bot": name, "heard": {"kind": event.kind, "seconds": event.seconds, "fingerprint": fingerprint}}
            )

        return None if deaf else heard

    async def join(self, request: dict[str, Any]) -> None:
        name = request["bot"]
        listen_to = request.get("listen_to")
        bot = Bot(
            identity=request["identity"],
            listen_to=listen_to,
            on_speech=self._hearing(name, request["deaf"]) if listen_to else None,
            pitch=float(request["pitch"]),
        )
        self.bots[name] = bot
        try:
            await bot.join(request["url"], request["token"])
            if self.bots.get(name) is not bot:
                raise RuntimeError(f"bot {name} was told to leave while it joined")
        except BaseException:
            if self.bots.get(name) is bot:
                del self.bots[name]
            await bot.leave()
            raise

    async def serve(self, request: dict[str, Any]) -> None:
        name = request["bot"]
        self.bot(name).serve(request["listen_to"], self._hearing(name, request["deaf"]), request["attributes"])

    def bot(self, name: str) -> Bot:
        bot = self.bots.get(name)
        if bot is None:
            raise LookupError(f"no bot {name!r} (it left, or never joined)")
        return bot

    async def speak(self, name: str, text: str, message_id: str) -> None:
        bot = self.bot(name)
        task = asyncio.ensure_future(bot.speak(text, message_id))
        self.speeches.setdefault(name, set()).add(task)
        try:
            with contextlib.suppress(asyncio.CancelledError):  # cut short by leave: nothing more to say
                await task
        finally:
            self.speeches.get(name, set()).discard(task)

    async def leave(self, name: str) -> None:
        for task in self.speeches.pop(name, set()):
            task.cancel()
        bot = self.bots.pop(name, None)
        if bot is not None:
            await bot.leave()

    async def leave_all(self) -> None:
        await asyncio.gather(*(self.leave(name) for name in list(self.bots)), return_exceptions=True)


async def read_requests(requests: asyncio.StreamReader, worker: Worker) -> None:
    handling: set[asyncio.Task[None]] = set()
    while line := await requests.readline():
        try:
            request = json.loads(line)
        except ValueError:
            log.error("ignoring a request that is not JSON: %r", line[:80])
            continue
        task = asyncio.ensure_future(worker.handle(request))
        handling.add(task)
        task.add_done_callback(handling.discard)
    await worker.leave_all()
    for task in handling:
        task.cancel()
    await asyncio.gather(*handling, return_exceptions=True)


async def amain() -> None:
    # Replies go to the original stdout; anything else printing to fd 1 (native code too) lands on stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), sys.stdin)
    await read_requests(requests, Worker(out))


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s bot-worker %(name)s %(levelname)s %(message)s")
    logging.getLogger("livekit").addFilter(_RedactJwt())
    asyncio.run(amain())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
