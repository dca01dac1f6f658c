"""estuary-browser-shim: a JavaScript client in headless Chromium behind the JSON-lines protocol.

The user's adapter module (an ES module exporting ``create(settings, hooks)``) is bundled with
esbuild, served from loopback, and driven in one page per shim process; the page's microphone is
fed by ``say`` and its speaker is measured.
"""

from __future__ import annotations

from pytest_estuary.clients.browser.bundle import BundleError, find_esbuild
from pytest_estuary.clients.browser.chromium import CHROMIUM_FLAGS, ChromiumMissing, find_chromium
from pytest_estuary.clients.browser.cli import main
from pytest_estuary.clients.browser.relay import BrowserShimError

__all__ = [
    "CHROMIUM_FLAGS",
    "BrowserShimError",
    "BundleError",
    "ChromiumMissing",
    "find_chromium",
    "find_esbuild",
    "main",
]
