"""Choosing the voice transport (protocol.md section 6, SEL-1…SEL-5).

The choice depends only on the configured value and on whether the LiveKit client library is
*installed*; loading it happens at start (so a native-library failure is LIVEKIT_UNAVAILABLE,
ERR-1), and the server is never consulted (SEL-5).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType
from typing import Literal

from pytest_estuary.client.errors import ErrorCode, EstuaryError

__all__ = ["LIVEKIT_MODULE", "Transport", "livekit_installed", "load_livekit", "select_transport"]

log = logging.getLogger("pytest_estuary.client")
Transport = Literal["livekit", "websocket"]
LIVEKIT_MODULE = "livekit.rtc"
LIVEKIT_PACKAGE = "livekit"  # the PyPI distribution that provides livekit.rtc


def livekit_installed() -> bool:
    """True when ``livekit.rtc`` can be found (without loading it)."""
    try:
        return importlib.util.find_spec(LIVEKIT_MODULE) is not None
    except (ImportError, ValueError):  # parent missing, or a finder refused it
        return False


def select_transport(requested: object) -> Transport:
    """SEL-1/2/3/4: the transport for ``voice_transport=requested``."""
    if requested == "websocket":
        return "websocket"
    if requested == "auto":
        return "livekit" if livekit_installed() else "websocket"
    if requested == "livekit":
        if livekit_installed():
            return "livekit"
        log.warning(
            "voice_transport='livekit' but the LiveKit client library (the %r package, module %s) is not "
            "installed; using the WebSocket transport (pip install livekit)",
            LIVEKIT_PACKAGE,
            LIVEKIT_MODULE,
        )
        return "websocket"
    raise EstuaryError(
        ErrorCode.VOICE_NOT_SUPPORTED,
        f"voice_transport: expected one of 'auto', 'livekit', 'websocket', got {requested!r}",
    )


def load_livekit() -> ModuleType:
    """Import ``livekit.rtc`` now; a failure to load (ImportError, or OSError from the native
    library) is LIVEKIT_UNAVAILABLE with the cause chained (ERR-1)."""
    try:
        return importlib.import_module(LIVEKIT_MODULE)
    except (ImportError, OSError) as exc:
        raise EstuaryError(
            ErrorCode.LIVEKIT_UNAVAILABLE,
            f"the LiveKit transport was selected but {LIVEKIT_MODULE} could not be loaded: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
