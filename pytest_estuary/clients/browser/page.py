"""One Chromium page holding one client, driven over the DevTools protocol: the fake microphone
and speaker installed before any script, the adapter loaded, every page→shim message through one
binding (so replies and events keep the page's order)."""

from __future__ import annotations

import asyncio
import collections
import json
import sys
from collections.abc import Callable
from typing import Any

from pytest_estuary.clients.browser.cdp import CdpConnection, CdpError
from pytest_estuary.clients.browser.page_server import ADAPTER_PATH, media_script

__all__ = ["BrowserPage", "ConsoleLog", "PageScriptError"]

CONSOLE_KEPT = 20  # the page's last console lines, for error messages
LOAD_TIMEOUT = 30.0
BINDING = "__estuarySend"


class PageScriptError(RuntimeError):
    """A script evaluated in the page threw (the message is the page's exception)."""


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


def _shown(value: dict[str, Any]) -> str:
    """A console argument (a DevTools RemoteObject) as text."""
    if "value" in value:
        inner = value["value"]
        return inner if isinstance(inner, str) else json.dumps(inner)
    return str(value.get("unserializableValue") or value.get("description") or value.get("type"))


def _exception_text(details: dict[str, Any], labelled: bool = True) -> str:
    """A page exception, labelled as DevTools labels an uncaught one: "Uncaught" or "Uncaught (in
    promise)" (an unhandled rejection)."""
    exception = details.get("exception") or {}
    text = str(exception.get("description") or exception.get("value") or "an exception")
    label = str(details.get("text") or "")
    return f"{label} {text}" if labelled and label.startswith("Uncaught") else text


class BrowserPage:
    """``on_message`` gets every reply, event and log line the page posts, in the page's order;
    ``on_gone`` is told once when the page crashes or the browser goes away."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None], on_gone: Callable[[str], None]) -> None:
        self.on_message, self.on_gone = on_message, on_gone
        self.console = ConsoleLog()
        self._cdp: CdpConnection | None = None
        self._session: str | None = None
        self._closing = False

    async def open(self, endpoint: str, url: str) -> None:
        cdp = await CdpConnection.connect(endpoint)
        self._cdp = cdp
        cdp.on_close = lambda: self._gone("the browser went away (Chromium exited)")
        # The tab Chromium opened at start (about:blank): a new one would cost another renderer.
        targets = (await cdp.send("Target.getTargets"))["targetInfos"]
        pages = [target["targetId"] for target in targets if target.get("type") == "page"]
        target = pages[0] if pages else (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        attached = await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = self._session = attached["sessionId"]
        loaded = asyncio.get_running_loop().create_future()
        cdp.on(session, "Runtime.bindingCalled", self._binding)
        cdp.on(session, "Runtime.consoleAPICalled", self._console)
        cdp.on(session, "Runtime.exceptionThrown", self._exception)
        cdp.on(session, "Inspector.targetCrashed", lambda _: self._gone("the page crashed"))
        cdp.on(session, "Page.loadEventFired", lambda _: None if loaded.done() else loaded.set_result(None))
        for method in ("Page.enable", "Runtime.enable", "Inspector.enable"):
            await cdp.send(method, session=session)
        await cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": media_script()}, session)
        await cdp.send("Runtime.addBinding", {"name": BINDING}, session)
        navigated = await cdp.send("Page.navigate", {"url": url}, session)
        if navigated.get("errorText"):
            raise PageScriptError(f"the page {url} did not load: {navigated['errorText']}")
        try:
            await asyncio.wait_for(loaded, LOAD_TIMEOUT)
        except TimeoutError:
            raise PageScriptError(f"the page {url} did not finish loading within {LOAD_TIMEOUT:g} s") from None

    def _binding(self, params: dict[str, Any]) -> None:
        if params.get("name") != BINDING:
            return
        try:
            message = json.loads(params.get("payload", ""))
        except ValueError:
            self.console.add("shim", f"not JSON from the page's runtime: {params.get('payload', '')[:200]!r}")
            return
        if isinstance(message, dict):
            self.on_message(message)

    def _console(self, params: dict[str, Any]) -> None:
        text = " ".join(_shown(arg) for arg in params.get("args", []))
        self.console.add(f"console.{params.get('type', 'log')}", text)

    def _exception(self, params: dict[str, Any]) -> None:
        self.console.add("error", _exception_text(params.get("exceptionDetails") or {}))

    def _gone(self, why: str) -> None:
        if not self._closing:
            self.on_gone(why)

    async def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of ``expression`` (a promise is awaited); PageScriptError when it throws."""
        assert self._cdp is not None
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        call = self._cdp.send("Runtime.evaluate", params, self._session)
        reply = await (asyncio.wait_for(call, timeout) if timeout is not None else call)
        if "exceptionDetails" in reply:
            raise PageScriptError(_exception_text(reply["exceptionDetails"], labelled=False))
        return reply.get("result", {}).get("value")

    async def load(self) -> dict[str, Any]:
        """Import the adapter bundle in the page: its info (name, version, capabilities)."""
        info: dict[str, Any] = await self.evaluate(f"window.__estuaryShim.load({json.dumps(ADAPTER_PATH)})")
        return info

    async def run(self, ident: int, op: str, request: dict[str, Any]) -> None:
        """Start the op in the page; its reply comes later through ``on_message``."""
        arguments = ", ".join(json.dumps(value) for value in (ident, op, request))
        await self.evaluate(f"void window.__estuaryShim.run({arguments})")

    async def close_client(self, timeout: float) -> None:
        """The adapter's disconnect, if it has a client (EOF on stdin), bounded by ``timeout``."""
        script = (
            "(async () => { const a = window.__estuaryShim.adapter; if (a?.disconnect) await a.disconnect({}); })()"
        )
        try:
            await self.evaluate(script, timeout)
        except (CdpError, PageScriptError, TimeoutError) as exc:
            self.console.add("shim", f"the client's disconnect at the end: {exc}")

    async def close(self) -> None:
        self._closing = True
        if self._cdp is not None:
            await self._cdp.close()
