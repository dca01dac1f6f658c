"""The page's origin: a tiny HTTP server on 127.0.0.1 (a free port) serving the shim's page, its
runtime and the bundled adapter. Loopback only: the fake server accepts loopback origins."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

__all__ = ["ADAPTER_PATH", "PageServer"]

ADAPTER_PATH = "/__estuary/adapter.js"
_JS = "text/javascript"


def _asset(name: str) -> str:
    return resources.files("pytest_estuary.clients.browser").joinpath("page", name).read_text(encoding="utf-8")


def media_script() -> str:
    """The init script: the fake microphone and the measured speaker (page/media.js)."""
    return _asset("media.js")


class PageServer:
    """Serves ``/`` (the page), ``/__estuary/runtime.js`` and the adapter bundle until stopped."""

    def __init__(self, adapter_script: str) -> None:
        self._files = {
            "/": (_asset("index.html"), "text/html"),
            "/__estuary/runtime.js": (_asset("runtime.js"), _JS),
            ADAPTER_PATH: (adapter_script, _JS),
        }
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _serve(self, request: web.Request) -> web.Response:
        found = self._files.get(request.path)
        if found is None:
            return web.Response(status=404, text=f"estuary-browser-shim serves no {request.path}")
        body, content_type = found
        return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "no-store"})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
