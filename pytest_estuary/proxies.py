"""HTTP proxies as CI runners set them (HTTPS_PROXY / HTTP_PROXY / NO_PROXY): which one a URL
goes through, and a CONNECT tunnel through it for the preflight's probes.

aiohttp's ``trust_env=True`` reads the same variables for the client's and the peers' Socket.IO
connections; livekit.rtc's signalling reads them itself. LiveKit media is UDP and never goes
through an HTTP proxy.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

__all__ = ["ProxyError", "open_tunnel", "proxy_for", "proxy_shown", "proxy_variable"]


class ProxyError(ConnectionError):
    """The proxy could not be reached, or refused the tunnel; the message names the proxy."""


def proxy_shown(proxy: str) -> str:
    """The proxy without user info (credentials hide there)."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _secure(url: str) -> bool:
    return urlsplit(url).scheme in ("https", "wss")


def proxy_variable(url: str) -> str:
    """The variable that names the proxy for ``url`` (for messages)."""
    return "HTTPS_PROXY" if _secure(url) else "HTTP_PROXY"


def proxy_for(url: str) -> str | None:
    """The proxy URL the environment chooses for ``url``, or None for a direct connection."""
    proxy = getproxies().get("https" if _secure(url) else "http")
    host = urlsplit(url).hostname or ""
    if not proxy or proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


async def open_tunnel(
    proxy: str, host: str, port: int, timeout: float, *, variable: str = "HTTPS_PROXY"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP stream to ``host:port`` through ``proxy``'s CONNECT, within ``timeout``."""
    shown = f"the proxy {proxy_shown(proxy)} (from {variable})"
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    where = f"{parts.hostname}:{parts.port or 80}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 80), timeout)
    except TimeoutError:
        raise ProxyError(f"{shown} did not accept a TCP connection at {where} within {timeout:g} s") from None
    except OSError as exc:
        raise ProxyError(f"{shown} cannot be reached at {where}: {(exc.strerror or str(exc)).lower()}") from None
    writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        writer.close()
        raise ProxyError(f"{shown} gave no answer to CONNECT {host}:{port} ({type(exc).__name__})") from None
    status = head.split(b"\r\n", 1)[0].decode("latin-1").strip()
    code = status.split(" ")[1] if len(status.split(" ")) > 1 else ""
    if code != "200":
        writer.close()
        raise ProxyError(f"{shown} refused CONNECT {host}:{port}: {status[:120]!r}")
    return reader, writer
