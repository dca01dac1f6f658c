"""``python -m pytest_estuary.clients.shim ours|estuary-sdk``: an in-process adapter served over the
JSON-lines protocol of :mod:`pytest_estuary.clients.json_lines`, one client per process.

With ``ESTUARY_CLIENT_LIVEKIT_LIBRARY`` set to "missing" or "broken" the shim first blocks
``livekit.rtc`` in the import system (not found, or found but failing to load like a native library
that cannot be opened), so the client meets the library exactly as a user's broken install would.
stdout carries only protocol lines: the process's fd 1 is pointed at stderr (Python prints, logging,
native libraries) and the protocol writes to its own duplicate of the original stdout.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import IO, Any

from pytest_estuary.clients.interface import (
    LIVEKIT_LIBRARY_ENV,
    ClientFailure,
    ClientInfo,
    ClientSettings,
    ClientUnderTest,
    Unsupported,
)

__all__ = ["ADAPTERS", "block_livekit", "main"]

ADAPTERS = ("ours", "estuary-sdk")
PROTOCOL_VERSION = 1
LINE_LIMIT = 64 * 1024 * 1024  # a say() of a long utterance is megabytes of base64
CLOSE_TIMEOUT = 4.0  # the client's disconnect at EOF: under the harness's 5 s before it kills us
BROKEN_LIBRARY = "liblivekit_ffi.so: cannot open shared object file: No such file or directory"

log = logging.getLogger("pytest_estuary.clients.shim")


class _LiveKitBlocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``livekit.rtc`` (and its submodules) missing, or found but failing to load."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "livekit.rtc" and not fullname.startswith("livekit.rtc."):
            return None
        if self.mode == "missing":
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise OSError(BROKEN_LIBRARY)


def block_livekit(mode: str) -> None:
    """Make ``livekit.rtc`` "missing" or "broken" for everything imported from now on."""
    if mode not in ("missing", "broken"):
        raise ValueError(f"{LIVEKIT_LIBRARY_ENV}: expected 'missing' or 'broken', got {mode!r}")
    if any(name == "livekit.rtc" or name.startswith("livekit.rtc.") for name in sys.modules):
        raise RuntimeError("livekit.rtc was imported before the shim could block it")
    sys.meta_path.insert(0, _LiveKitBlocker(mode))


class _Output:
    """The protocol's stdout: a private duplicate of fd 1; fd 1 itself then points at stderr, so
    nothing else (print, a native library) can write a non-protocol line into it."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._file: IO[str] = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()  # log records may come from the client's threads
        self.gone = False

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), default=repr) + "\n"
        with self._lock:
            if self.gone:
                return
            try:
                self._file.write(line)
                self._file.flush()
            except (BrokenPipeError, ValueError):
                self.gone = True  # the harness is gone: EOF on stdin follows


def _adapter(name: str) -> tuple[ClientInfo, Callable[[ClientSettings], ClientUnderTest]]:
    """The adapter's info and constructor, imported only now (after the LiveKit block)."""
    if name == "ours":
        from pytest_estuary import __version__
        from pytest_estuary.clients.ours import CAPABILITIES, OurClient

        return ClientInfo("pytest-estuary", __version__, CAPABILITIES), OurClient
    from pytest_estuary.clients.estuary_sdk import CAPABILITIES as SDK_CAPABILITIES
    from pytest_estuary.clients.estuary_sdk import EstuarySdkClient

    return ClientInfo("estuary-sdk", importlib.metadata.version("estuary-sdk"), SDK_CAPABILITIES), EstuarySdkClient


def _failure(exc: BaseException) -> dict[str, Any]:
    """An exception the adapter let through, as the error of a reply (the adapter normalises the
    client's errors itself; this is for anything else it raised)."""
    cause = exc.__cause__
    return ClientFailure(
        None,
        str(exc) or type(exc).__name__,
        raw=f"{type(exc).__module__}.{type(exc).__qualname__}",
        cause=None if cause is None else f"{type(cause).__name__}: {cause}",
    ).to_json()


class _Server:
    """Reads requests from stdin and runs each as its own task (they may overlap: a disconnect may
    come while start_voice runs); answers each in the order they finish."""

    def __init__(self, adapter: str, output: _Output, livekit_library: str) -> None:
        self.info, self.factory = _adapter(adapter)
        self.output = output
        self.livekit_library = livekit_library
        self.client: ClientUnderTest | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        self.output.send({"hello": {**self.info.to_json(), "protocol": PROTOCOL_VERSION}})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while line := await reader.readline():
                self._take(line)
        finally:
            await self._close()

    def _take(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        ident = request.get("id") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(ident, int) or not isinstance(request.get("op"), str):
            self._log("ERROR", f"not a request (expected {{'id': int, 'op': str, ...}}): {line[:200]!r}")
            return
        if request["op"] == "cancel":
            task = self.tasks.get(ident)
            if task is not None:
                task.cancel()
            return
        task = asyncio.create_task(self._answer(ident, request), name=f"request {ident} {request['op']}")
        self.tasks[ident] = task
        task.add_done_callback(lambda _: self.tasks.pop(ident, None))

    async def _answer(self, ident: int, request: dict[str, Any]) -> None:
        try:
            result = await self._perform(request)
        except ClientFailure as exc:
            reply: dict[str, Any] = {"id": ident, "ok": False, "error": exc.to_json()}
        except Unsupported as exc:
            reply = {"id": ident, "ok": False, "unsupported": str(exc)}
        except asyncio.CancelledError:
            reply = {"id": ident, "ok": False, "error": _failure(asyncio.CancelledError("cancelled by the harness"))}
        except Exception as exc:
            reply = {"id": ident, "ok": False, "error": _failure(exc)}
        else:
            reply = {"id": ident, "ok": True, "result": result}
        self.output.send(reply)

    async def _perform(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "create":
            return self._create(request.get("settings"))
        client = self.client
        if client is None:
            raise ClientFailure(None, f"{op!r} before 'create': the shim has no client yet", raw="shim")
        if op == "connect":
            return await client.connect()
        if op == "start_voice":
            return await client.start_voice()
        if op == "stop_voice":
            return await client.stop_voice()
        if op == "toggle_mute":
            return await client.toggle_mute()
        if op == "send_text":
            return await client.send_text(str(request.get("text", "")))
        if op == "say":
            pcm16 = base64.b64decode(str(request.get("pcm16", "")), validate=True)
            return await client.say(pcm16, int(request.get("sample_rate", 48000)))
        if op == "state":
            return (await client.state()).to_json()
        if op == "disconnect":
            return await client.disconnect()
        raise Unsupported(f"this shim does not know the op {op!r}")

    def _create(self, settings_json: object) -> None:
        if self.client is not None:
            raise ClientFailure(None, "'create' twice: one shim process serves one client", raw="shim")
        if not isinstance(settings_json, dict):
            raise ClientFailure(None, f"'create' needs 'settings' as an object, got {settings_json!r}", raw="shim")
        settings = ClientSettings.from_json(settings_json)
        if settings.livekit_library != self.livekit_library:
            raise ClientFailure(
                None,
                f"settings.livekit_library is {settings.livekit_library!r} but the shim runs with "
                f"{LIVEKIT_LIBRARY_ENV}={self.livekit_library!r}",
                raw="shim",
            )
        client = self.factory(settings)
        # The adapter records into its own lists; the harness holds the real ones, so forward instead.
        client.record_event = self._forward_event  # type: ignore[method-assign]
        client.record_warning = self._forward_warning  # type: ignore[method-assign]
        self.client = client

    def _forward_event(self, name: str, payload: dict[str, Any] | None = None) -> None:
        self.output.send({"event": name, "payload": payload or {}})

    def _forward_warning(self, message: str) -> None:
        self._log("WARNING", message)

    def _log(self, level: str, message: str) -> None:
        self.output.send({"log": {"level": level, "message": message}})

    async def _close(self) -> None:
        """EOF: stop what runs, release the client (bounded), and let the process exit."""
        for task in list(self.tasks.values()):
            task.cancel()
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.aclose(), CLOSE_TIMEOUT)
            except Exception as exc:  # the harness is leaving; stderr is the only place left to say it
                log.warning("closing the client at EOF: %s: %s", type(exc).__name__, exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in ADAPTERS:
        print(f"usage: python -m pytest_estuary.clients.shim {'|'.join(ADAPTERS)}", file=sys.stderr)
        return 2
    livekit_library = os.environ.get(LIVEKIT_LIBRARY_ENV, "present") or "present"
    if livekit_library != "present":
        try:
            block_livekit(livekit_library)
        except (ValueError, RuntimeError) as exc:
            print(f"shim: {exc}", file=sys.stderr)
            return 2
    output = _Output()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_Server(args[0], output, livekit_library).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
