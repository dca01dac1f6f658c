"""SEL-1, SEL-2 and ERR-1 with the LiveKit library really missing or really failing to load.

Each case runs a fresh Python whose import system blocks ``livekit.rtc`` (a meta-path finder
installed before anything is imported): "missing" raises ModuleNotFoundError on lookup,
"broken" finds the module but fails loading it with OSError, like a native library that
cannot be opened. The client has no switch for this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from fake_server import FakeEstuaryServer

from .conftest import in_log

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, importlib.util, sys
    MODE = sys.argv[1]

    class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == "livekit.rtc" or name.startswith("livekit.rtc."):
                if MODE == "missing":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return importlib.util.spec_from_loader(name, self)
            return None
        def create_module(self, spec):
            return None
        def exec_module(self, module):
            raise OSError("liblivekit_ffi.so: cannot open shared object file: No such file or directory")

    sys.meta_path.insert(0, Blocker())

    import asyncio, json, logging
    from pytest_estuary.client import EstuaryClient, EstuaryError

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append([record.levelname, record.getMessage()])
    logging.getLogger("pytest_estuary.client").addHandler(Keep())

    async def main():
        url, key, player, transport = sys.argv[2:6]
        client = EstuaryClient(url, key, "c", player, voice_transport=transport)
        result = {}
        try:
            await client.connect()
            try:
                result["transport"] = await client.start_voice()
                await client.stop_voice()
            except EstuaryError as exc:
                result.update(code=exc.code.value, message=str(exc), cause=type(exc.__cause__).__name__)
                result["retry_code"] = None
                try:
                    await client.start_voice()
                except EstuaryError as again:
                    result["retry_code"] = again.code.value
                result["leaked"] = client.transport is not None or client.audio_input.is_open
        finally:
            await client.disconnect()
        result["warnings"] = [m for level, m in records if level == "WARNING"]
        result["rtc_loaded"] = "livekit.rtc" in sys.modules
        print(json.dumps(result))

    asyncio.run(main())
    """
)


def run_client(fake: FakeEstuaryServer, mode: str, transport: str, player: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, fake.url, fake.api_key, player, transport],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert done.returncode == 0, f"client subprocess failed:\n{done.stderr[-3000:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def sent(fake: FakeEstuaryServer, player: str, name: str) -> int:
    sessions = {e.session_id for e in fake.events.find(name="session_info", direction="out")
                if isinstance(e.payload, dict) and e.payload.get("player_id") == player}
    return sum(len(in_log(fake, name, "in", s)) for s in sessions)


def test_sel_1_auto_without_library_uses_websocket_silently(fake: FakeEstuaryServer) -> None:
    result = run_client(fake, "missing", "auto", "p-auto-missing")
    assert result["transport"] == "websocket" and result["warnings"] == []
    assert sent(fake, "p-auto-missing", "livekit_token") == 0 and sent(fake, "p-auto-missing", "start_voice") == 1


def test_sel_2_livekit_without_library_warns_and_uses_websocket(fake: FakeEstuaryServer) -> None:
    result = run_client(fake, "missing", "livekit", "p-lk-missing")
    assert result["transport"] == "websocket"
    warnings = result["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1 and "'livekit'" in warnings[0]
    assert sent(fake, "p-lk-missing", "livekit_token") == 0


@pytest.mark.parametrize("transport", ["auto", "livekit"])
def test_err_1_native_library_fails_to_load(fake: FakeEstuaryServer, transport: str) -> None:
    player = f"p-broken-{transport}"
    result = run_client(fake, "broken", transport, player)
    assert result["code"] == "LIVEKIT_UNAVAILABLE" and result["cause"] == "OSError"
    assert "liblivekit_ffi.so" in str(result["message"])  # ERR-5: the underlying reason
    assert result["retry_code"] == "LIVEKIT_UNAVAILABLE" and result["leaked"] is False
    assert sent(fake, player, "livekit_token") == 0 and sent(fake, player, "start_voice") == 0
