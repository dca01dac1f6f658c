"""Helpers for client cases: voice start as a step, and a client run in a Python whose LiveKit
library is missing or broken."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any, Literal

from pytest_estuary.verdicts import Blocked

__all__ = ["HANDSHAKE", "run_client_without_livekit", "server_requirement", "started"]

HANDSHAKE = ("LK-1", "LK-2", "LK-5")  # the LiveKit start's server steps in order: token, room, ready


def server_requirement(transport: str | None, message: str) -> str:
    """The server requirement whose step a failed ``start_voice()`` message points at.

    The client names the phase in its messages (token, room connect, publish, ready); a
    WebSocket start is WS-1's step.
    """
    if transport == "websocket":
        return "WS-1"
    text = message.lower()
    if "room connect" in text or "publish" in text or "token joined room" in text:
        return "LK-2"  # checked first: a room mismatch names the livekit_token that announced the room
    if "livekit_token" in text or "token reply" in text:
        return "LK-1"
    if "livekit_ready" in text:
        return "LK-5"
    # livekit_error can answer the token or the join; the earlier step is the one to blame
    return "LK-1" if "livekit_error" in text else "LK-5"


async def started(client: Any, transport: str | None = None) -> str:
    """``client.start_voice()`` as a precondition: a failure BLOCKS the case by the server step it
    names (a client case observes the client, not a broken server). Returns the transport."""
    from pytest_estuary.client import EstuaryError

    wanted = transport or getattr(getattr(client, "config", None), "voice_transport", None)
    try:
        chosen: str = await client.start_voice()
    except EstuaryError as exc:
        requirement = server_requirement(wanted if wanted in ("livekit", "websocket") else None, str(exc))
        raise Blocked(requirement, "voice start", str(exc)) from exc
    return chosen


_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, importlib.util, sys
    MODE, URL, KEY, PLAYER, TRANSPORT = sys.argv[1:6]

    class BlockLiveKit(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        # "missing": livekit.rtc cannot be found; "broken": found, but loading it fails like a bad .so
        def find_spec(self, name, path=None, target=None):
            if name == "livekit.rtc" or name.startswith("livekit.rtc."):
                if MODE == "missing":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return importlib.util.spec_from_loader(name, self)
            return None
        def create_module(self, spec):
            return None
        def exec_module(self, module):
            raise OSError("liblivekit_ffi.so: cannot open shared object file")

    sys.meta_path.insert(0, BlockLiveKit())

    import asyncio, json, logging
    from pytest_estuary.client import EstuaryClient, EstuaryError

    warnings = []
    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())
    logging.getLogger("pytest_estuary").addHandler(Keep())

    async def main():
        client = EstuaryClient(URL, KEY, "conformance", PLAYER, voice_transport=TRANSPORT)
        out = {"warnings": warnings}
        try:
            await client.connect()
        except EstuaryError as exc:
            out["connect_error"] = str(exc)
            print(json.dumps(out))
            return
        try:
            out["transport"] = await client.start_voice()
            await client.stop_voice()
        except EstuaryError as exc:
            out["code"], out["message"] = exc.code.value, str(exc)
        finally:
            await client.disconnect()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def run_client_without_livekit(
    mode: Literal["missing", "broken"], url: str, api_key: str, player_id: str, transport: str
) -> dict[str, Any]:
    """Connect and start voice in a fresh Python where ``livekit.rtc`` is missing or fails to load."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, url, api_key, player_id, transport],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"the client subprocess failed ({result.returncode}):\n{result.stderr[-2000:]}")
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if "connect_error" in output:  # the server opened no session: not the client case's business
        raise Blocked("CONN-3", "the client connects and gets session_info", str(output["connect_error"]))
    return output
