"""Finding and starting the system's Chromium for estuary-browser-shim (no browser download).

Chromium is started by us, not by Playwright: it stays in the shim's process group and gets a
parent-death signal, so a shim that is killed (the harness kills its group) leaves no browser.
Playwright then attaches over the DevTools protocol on a loopback port.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import re
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "CHROMIUM_NAMES", "Chromium", "ChromiumMissing", "find_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = (
    "install Debian's chromium (apt-get install chromium, or run scripts/install_browser.sh), "
    "or pass --chromium /path/to/chromium"
)
START_TIMEOUT = 30.0  # browser launch on a loaded 2-core machine
STOP_TIMEOUT = 5.0
KEPT_LINES = 30

# Why each flag: the network rule (README, "The network rule"), headless media, quiet start.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--remote-debugging-port=0",  # DevTools on 127.0.0.1, a free port (printed on stderr)
    "--remote-debugging-address=127.0.0.1",
    # ICE host candidates carry the interface's real address (the namespace's veth), not an
    # mDNS ".local" name that nothing in the namespace would resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints,Translate",
    "--force-webrtc-ip-handling-policy=default",
    "--use-fake-ui-for-media-stream",  # no permission prompt (the page's getUserMedia is ours anyway)
    "--autoplay-policy=no-user-gesture-required",  # AudioContext and <audio> start without a click
    # nothing but the page's own traffic: no updater, no pings, no safe-browsing or DNS prefetch
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-breakpad",
    "--dns-prefetch-disable",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # one page per browser: fewer processes start (a client case starts a browser per client)
    "--in-process-gpu",
    "--renderer-process-limit=1",
    "--disable-site-isolation-trials",
    "--disable-extensions",
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class ChromiumMissing(RuntimeError):
    """No Chromium where it was looked for."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit`` (a path or a name on PATH), else the first of
    CHROMIUM_NAMES on PATH. ChromiumMissing naming where it looked and what to install."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ChromiumMissing(f"--chromium {explicit!r}: no such executable; {INSTALL_HINT}")
        return found
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise ChromiumMissing(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); {INSTALL_HINT}")


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the shim dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class Chromium:
    """One headless Chromium process and its DevTools endpoint; its stderr's last lines kept."""

    def __init__(self, process: asyncio.subprocess.Process, endpoint: str, lines: collections.deque[str]) -> None:
        self.process, self.endpoint, self.lines = process, endpoint, lines
        self._drain = asyncio.create_task(self._drain_stderr(), name="chromium stderr")

    @classmethod
    async def start(cls, executable: str, profile: Path, extra: Sequence[str] = ()) -> Chromium:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra]
        if os.geteuid() == 0:
            # Chromium refuses to run as root with its sandbox on; without one, no zygote either
            flags += ["--no-sandbox", "--no-zygote"]
        process = await asyncio.create_subprocess_exec(
            executable,
            *flags,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        assert process.stderr is not None
        try:
            endpoint = await asyncio.wait_for(cls._endpoint(process.stderr, lines), START_TIMEOUT)
        except (TimeoutError, EOFError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            said = "\n".join(f"  | {line}" for line in lines) or "  (nothing)"
            why = "exited" if isinstance(exc, EOFError) else f"printed no DevTools endpoint within {START_TIMEOUT:g} s"
            raise RuntimeError(
                f"Chromium {executable} {why} (status {process.returncode}); its stderr:\n{said}"
            ) from None
        return cls(process, endpoint, lines)

    @staticmethod
    async def _endpoint(stderr: asyncio.StreamReader, lines: collections.deque[str]) -> str:
        while True:
            line = await stderr.readline()
            if not line:
                raise EOFError
            text = line.decode("utf-8", "replace").rstrip()
            lines.append(text)
            found = _LISTENING.search(text)
            if found:
                return found.group(1)

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    async def stop(self) -> None:
        """TERM, then KILL after STOP_TIMEOUT; the whole browser (its helpers die with it)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain, 2.0)
        self._drain.cancel()
