"""The line protocol on stdio, relayed to the client in the page: requests in, and the page's
replies, events and log lines out; a bound on every op; a broken adapter ends the shim with a
message naming the module, the op and the page's last console lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_estuary.clients.browser.bundle import BundleError, bundle, find_esbuild
from pytest_estuary.clients.browser.chromium import Chromium, ChromiumMissing, find_chromium
from pytest_estuary.clients.browser.page import BrowserPage
from pytest_estuary.clients.browser.page_server import PageServer
from pytest_estuary.clients.interface import ClientSettings
from pytest_estuary.clients.json_lines import REQUEST_MARGIN, request_timeout
from pytest_estuary.clients.shim import LINE_LIMIT, PROTOCOL_VERSION, _Output

__all__ = ["BrowserShimError", "Options", "serve"]

# The shim gives up on an op this long before the harness would: then it can still say why.
DEADLINE_SLACK = REQUEST_MARGIN / 2
DEFAULT_DEADLINE = request_timeout(ClientSettings("", "", "", "")) - DEADLINE_SLACK
CLOSE_TIMEOUT = 4.0  # the client's disconnect at EOF: under the harness's 5 s before it kills us
WATCH_EVERY = 0.25
TEARDOWN_STEP = 3.0  # closing the DevTools socket, stopping the page server: each bounded


class BrowserShimError(RuntimeError):
    """The adapter module cannot serve the harness; the message names the module, the op and the
    page's last console lines."""

    shown = False  # already written to stderr (before the teardown); not to be written twice

    def __init__(self, module: Path, op: str, what: str, console: str = "  (no page yet)") -> None:
        super().__init__(
            f"estuary-browser-shim: module {module}: {what} (op: {op})\nthe page's last console lines:\n{console}"
        )


@dataclass(frozen=True)
class Options:
    module: Path
    chromium: str | None = None
    livekit_library: str = "present"


class _Relay:
    def __init__(self, options: Options, output: _Output) -> None:
        self.options, self.output = options, output
        self.page = BrowserPage(self._from_page, self._page_gone)
        self.pending: dict[int, tuple[str, float]] = {}  # id → (op, deadline)
        self.deadline = DEFAULT_DEADLINE
        self.fatal: asyncio.Future[BrowserShimError] = asyncio.get_running_loop().create_future()
        self.created = False

    def _fail(self, op: str, what: str) -> None:
        if not self.fatal.done():
            error = BrowserShimError(self.options.module, op, what, self.page.console.tail())
            self.fatal.set_result(error)

    def _in_flight(self) -> str:
        return ", ".join(f"'{op}' (id {ident})" for ident, (op, _) in self.pending.items()) or "none in flight"

    def _from_page(self, message: dict[str, Any]) -> None:
        if "fatal" in message:
            fatal = message["fatal"]
            self._fail(str(fatal.get("op")), str(fatal.get("error")))
            return
        if "id" in message:
            entry = self.pending.pop(message["id"], None)
            if entry is not None and entry[0] == "create" and message.get("ok") is True:
                self.created = True
        self.output.send(message)

    def _page_gone(self, why: str) -> None:
        self._fail(self._in_flight(), why)

    async def _watch(self) -> None:
        """A request the page has not answered by its deadline ends the shim (a hung adapter)."""
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now = time.monotonic()
            for ident, (op, deadline) in list(self.pending.items()):
                if now > deadline:
                    self._fail(f"'{op}' (id {ident})", f"the adapter never answered within {self.deadline:g} s")

    async def _take(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        ident = request.get("id") if isinstance(request, dict) else None
        op = request.get("op") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(ident, int) or not isinstance(op, str):
            self.output.send({"log": {"level": "ERROR", "message": f"not a request: {line[:200]!r}"}})
            return
        if op == "cancel":
            self.pending.pop(ident, None)  # the harness ignores a late reply; stop the clock on it
            return
        if op == "create" and isinstance(request.get("settings"), dict):
            with contextlib.suppress(TypeError, ValueError):
                settings = ClientSettings.from_json(request["settings"])
                self.deadline = request_timeout(settings) - DEADLINE_SLACK
        self.pending[ident] = (op, time.monotonic() + self.deadline)
        fields = {key: value for key, value in request.items() if key not in ("id", "op")}
        try:
            await self.page.run(ident, op, fields)
        except Exception as exc:  # the page is gone: the crash handler says why
            self._fail(f"'{op}' (id {ident})", f"the page could not take the request: {exc}")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            await self._take(line)

    async def run(self) -> int:
        options = self.options
        module = options.module
        if not module.is_file():
            raise BrowserShimError(module, "start, before the hello", "no such file (--module wants an ES module file)")
        try:
            executable = find_chromium(options.chromium)
        except ChromiumMissing as exc:
            raise BrowserShimError(module, "start, before the hello", str(exc)) from None
        esbuild = find_esbuild(module)
        if esbuild is None:
            raise BrowserShimError(
                module,
                "start, before the hello",
                "esbuild not found in the module's node_modules/.bin or on PATH; install it in the module's "
                "project: npm install --save-dev esbuild",
            )
        try:
            script = await asyncio.to_thread(bundle, module, options.livekit_library, esbuild)
        except BundleError as exc:
            raise BrowserShimError(module, "bundling, before the hello", str(exc)) from None
        server = PageServer(script.script)
        url = await server.start()
        with tempfile.TemporaryDirectory(prefix="estuary-chromium-") as profile:
            chromium = await Chromium.start(executable, Path(profile))
            try:
                return await self._serve(chromium, url)
            finally:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.page.close(), TEARDOWN_STEP)
                await chromium.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.stop(), TEARDOWN_STEP)

    async def _serve(self, chromium: Chromium, url: str) -> int:
        module = self.options.module
        try:
            await self.page.open(chromium.endpoint, url)
            info = await self.page.load()
        except Exception as exc:
            raise BrowserShimError(
                module, "loading the module, before the hello", str(exc), self.page.console.tail()
            ) from None
        name = info.get("name") or module.stem
        hello = {"name": name, "version": info.get("version") or "0", "capabilities": info.get("capabilities") or []}
        self.output.send({"hello": {**hello, "protocol": PROTOCOL_VERSION}})
        watch = asyncio.create_task(self._watch())
        reading = asyncio.create_task(self._read())
        try:
            waits: set[asyncio.Future[Any]] = {reading, self.fatal}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if self.fatal.done():
                error = self.fatal.result()
                # Said now, not after the teardown: a slow browser exit must not outlast the
                # harness's wait and leave it with a timeout instead of the reason.
                print(error, file=sys.stderr, flush=True)
                error.shown = True
                raise error
            await reading  # EOF: the harness is done with this client
            if self.created:
                await self.page.close_client(CLOSE_TIMEOUT)
            return 0
        finally:
            for task in (watch, reading):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def serve(options: Options) -> int:
    """Run the shim until EOF on stdin (0), or until the adapter breaks (BrowserShimError)."""
    output = _Output()
    return await _Relay(options, output).run()
