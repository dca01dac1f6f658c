"""One Chromium page holding one client: Playwright attached over DevTools, the fake microphone
and speaker installed, the adapter loaded, every page→shim message through one binding."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Error, Page, Playwright, async_playwright

from pytest_estuary.clients.browser.page_server import ADAPTER_PATH, media_script

__all__ = ["BrowserPage", "ConsoleLog"]

CONSOLE_KEPT = 20  # the page's last console lines, for error messages
LOAD_TIMEOUT = 30.0


class ConsoleLog:
    """The page's console, page errors and unhandled rejections: each line to stderr at once (the
    harness shows the shim's stderr when a case errors), the last ones kept."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=CONSOLE_KEPT)

    def add(self, kind: str, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(f"[{kind}] {line}")
            print(f"page {kind}: {line}", file=sys.stderr, flush=True)

    def tail(self) -> str:
        return "\n".join(f"  | {line}" for line in self.lines) or "  (nothing)"


class BrowserPage:
    """``on_message`` gets every reply, event and log line the page posts, in the page's order;
    ``on_gone`` is told once when the page crashes or the browser goes away."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None], on_gone: Callable[[str], None]) -> None:
        self.on_message, self.on_gone = on_message, on_gone
        self.console = ConsoleLog()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._page: Page | None = None
        self._closing = False

    async def open(self, endpoint: str, url: str) -> None:
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.connect_over_cdp(endpoint)
        self._browser.on("disconnected", lambda _: self._gone("the browser went away (Chromium exited)"))
        context = await self._browser.new_context()
        await context.add_init_script(script=media_script())
        page = await context.new_page()
        self._page = page
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.add("error", f"{error.name}: {error.message}\n{error.stack}"))
        page.on("crash", lambda _: self._gone("the page crashed"))
        await page.expose_function("__estuarySend", self._receive)
        await page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT * 1000)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.add(f"console.{message.type}", message.text)

    def _receive(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self.console.add("shim", f"not JSON from the page's runtime: {text[:200]!r}")
            return
        if isinstance(message, dict):
            self.on_message(message)

    def _gone(self, why: str) -> None:
        if not self._closing:
            self.on_gone(why)

    async def load(self) -> dict[str, Any]:
        """Import the adapter bundle in the page: its info (name, version, capabilities)."""
        assert self._page is not None
        info: dict[str, Any] = await self._page.evaluate("url => window.__estuaryShim.load(url)", ADAPTER_PATH)
        return info

    async def run(self, ident: int, op: str, request: dict[str, Any]) -> None:
        """Start the op in the page; its reply comes later through ``on_message``."""
        assert self._page is not None
        await self._page.evaluate(
            "([id, op, request]) => window.__estuaryShim.run(id, op, request)", [ident, op, request]
        )

    async def close_client(self, timeout: float) -> None:
        """The adapter's disconnect, if it has a client (EOF on stdin), bounded by ``timeout``."""
        if self._page is None or self._page.is_closed():
            return
        script = "async () => { const a = window.__estuaryShim.adapter; if (a?.disconnect) await a.disconnect({}); }"
        with contextlib.suppress(Error, TimeoutError):
            await asyncio.wait_for(self._page.evaluate(script), timeout)

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), 5.0)
        with contextlib.suppress(Exception):
            if self._playwright is not None:
                await asyncio.wait_for(self._playwright.stop(), 5.0)
