"""The JSON-lines adapter: our client behind the shim process against the real fake server and
livekit-server, the example shim, and shims that break the protocol (ShimError, promptly)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from fake_server import FakeEstuaryServer
from pytest_estuary import audio
from pytest_estuary.clients import json_lines
from pytest_estuary.clients.interface import LIVEKIT_LIBRARY_ENV, ClientFailure, ClientSettings, Unsupported
from pytest_estuary.clients.json_lines import JsonLinesClient, ShimError, probe
from pytest_estuary.targets import EstuaryTarget

pytestmark = pytest.mark.asyncio

SHIM = [sys.executable, "-m", "pytest_estuary.clients.shim", "ours"]
EXAMPLE = [sys.executable, str(Path(__file__).parents[2] / "examples" / "line_protocol_shim.py")]
SPEECH = audio.utterance(duration=0.6, lead=0.1, tail=0.6)  # one detectable utterance, quickly

Start = Callable[..., Awaitable[JsonLinesClient]]


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def children() -> set[int]:
    """Our live descendants but the servers' (livekit-server; the fake's bot worker, started lazily)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if alive(child) and not any("fake_server" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def in_groups(groups: set[int]) -> list[psutil.Process]:
    """Live processes in these process groups: a shim and anything it started (each shim leads its own)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in groups and alive(process):
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


@pytest.fixture
def settings(estuary_server: FakeEstuaryServer, estuary_target: EstuaryTarget) -> Callable[..., ClientSettings]:
    def make(**overrides: Any) -> ClientSettings:
        values: dict[str, Any] = {
            "server_url": estuary_target.url,
            "api_key": estuary_target.api_key,
            "character_id": estuary_target.character_id,
            "player_id": f"shim-{uuid.uuid4().hex[:8]}",
        }
        return ClientSettings(**{**values, **overrides})

    return make


@pytest_asyncio.fixture
async def start(settings: Callable[..., ClientSettings]) -> AsyncIterator[Start]:
    """``await start(command=SHIM, **settings)``: a started JsonLinesClient, closed at teardown; no
    process of this test is left afterwards."""
    made: list[JsonLinesClient] = []
    before = children()

    async def make(command: list[str] = SHIM, **overrides: Any) -> JsonLinesClient:
        client = await JsonLinesClient.start(command, settings(**overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
    left = children() - before
    assert not left, f"processes left after aclose: {[psutil.Process(pid).cmdline() for pid in left]}"
    assert not in_groups({client.pid for client in made})


def final(payload: dict[str, Any]) -> bool:
    return payload.get("is_final") is True


async def test_websocket_voice_text_and_errors_through_the_shim(start: Start) -> None:
    client = await start(voice_transport="websocket")
    assert client.info.name == "pytest-estuary" and "livekit_library" in client.info.capabilities
    with pytest.raises(ClientFailure) as not_connected:
        await client.send_text("too early")
    assert not_connected.value.code == "NOT_CONNECTED"
    assert not_connected.value.raw == "pytest_estuary.client.errors.EstuaryError"
    await client.connect()
    await client.wait_for("connected", timeout=5, include_past=True)
    await client.send_text("hello there")
    reply = await client.wait_for("bot_response", final, timeout=10, include_past=True)
    assert reply["text"]
    assert await client.start_voice() == "websocket"
    with pytest.raises(ClientFailure) as twice:
        await client.start_voice()
    assert twice.value.code == "VOICE_ALREADY_ACTIVE"
    await client.say(SPEECH.tobytes(), 48000)
    said = await client.wait_for("stt_response", final, timeout=10, include_past=True)
    assert said["text"] == "utterance 1"
    assert await client.toggle_mute() is True
    state = await client.state()
    assert (state.transport, state.voice_active, state.muted, state.input_open) == ("websocket", True, True, True)
    assert isinstance(state.tasks, int)
    await client.stop_voice()
    await client.disconnect()
    await client.wait_for("disconnected", timeout=5, include_past=True)
    pid = client.pid
    await client.aclose()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_livekit_voice_through_the_shim(start: Start) -> None:
    client = await start(voice_transport="livekit")
    await client.connect()
    assert await client.start_voice() == "livekit"
    room = (await client.wait_for("livekit_connected", timeout=10, include_past=True))["room"]
    assert room and (await client.state()).room == room
    await client.say(SPEECH.tobytes(), 48000)
    said = await client.wait_for("stt_response", final, timeout=15, include_past=True)
    assert said["text"] == "utterance 1"
    # no stop_voice, no disconnect: at EOF the shim releases the room itself and exits, unkilled
    began = time.monotonic()
    await client.aclose()
    assert client.returncode == 0 and time.monotonic() - began < json_lines.CLOSE_TIMEOUT


async def test_a_cancelled_request_leaves_the_shim_usable(start: Start) -> None:
    client = await start(voice_transport="livekit")
    await client.connect()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.start_voice(), 0.01)  # the shim is told; its late reply is ignored
    state = await client.state()
    assert state.tasks is not None
    await client.disconnect()


async def test_livekit_library_missing_and_broken(start: Start) -> None:
    missing = await start(voice_transport="auto", livekit_library="missing")
    fallback = await start(voice_transport="livekit", livekit_library="missing")
    broken = await start(voice_transport="livekit", livekit_library="broken")
    await missing.connect()
    assert await missing.start_voice() == "websocket"  # SEL-1: no library, "auto" picks WebSocket
    await fallback.connect()
    assert await fallback.start_voice() == "websocket"  # SEL-2: warns, falls back
    assert fallback.warnings and not missing.warnings, (fallback.warnings, missing.warnings)
    await broken.connect()
    with pytest.raises(ClientFailure) as failure:
        await broken.start_voice()
    assert failure.value.code == "LIVEKIT_UNAVAILABLE", failure.value
    assert failure.value.raw.endswith("EstuaryError") and "OSError" in str(failure.value.cause)


async def test_the_example_shim_connects_and_talks(start: Start) -> None:
    assert probe(EXAMPLE).name == "example-shim"
    client = await start(EXAMPLE, voice_transport="websocket")
    with pytest.raises(ClientFailure) as early:
        await client.send_text("too early")
    assert early.value.code == "NOT_CONNECTED"
    await client.connect()
    await client.send_text("hello there")
    assert (await client.wait_for("bot_response", final, timeout=10, include_past=True))["text"]
    assert (await client.state()).transport is None
    with pytest.raises(Unsupported, match="no 'say'"):
        await client.say(SPEECH.tobytes(), 48000)


def shim(body: str) -> list[str]:
    """A shim that is a few lines of Python."""
    return [sys.executable, "-c", textwrap.dedent(body)]


HELLO = 'import json, sys\nprint(json.dumps({"hello": {"name": "t", "version": "0", "capabilities": [], "protocol": 1}}), flush=True)\n'  # noqa: E501


@pytest.mark.parametrize(
    ("body", "expected", "came"),
    [
        ("print('Loading livekit', flush=True)\n", "the hello line", "a line that is not JSON: 'Loading livekit'"),
        ("import sys\nprint('dying', file=sys.stderr)\nsys.exit(3)\n", "the hello line", "end of its stdout"),
        (HELLO + "sys.stdin.readline()\nprint('oops', flush=True)\n", "the reply to 'create'", "not JSON"),
        (HELLO + "sys.stdin.readline()\nprint('{\"id\": 7, \"ok\": true}', flush=True)\nsys.stdin.read()\n",
         "a reply to one of the requests sent", '"id": 7'),
        (HELLO + "sys.stdin.readline()\nprint('{\"id\": 1, \"ok\": 5}', flush=True)\nsys.stdin.read()\n",
         "for id 1 ('create')", '"ok": 5'),
        (HELLO.replace('"protocol": 1', '"protocol": 2'), "a hello with protocol 1", "protocol 2"),
    ],
    ids=["garbage", "exits-early", "garbage-reply", "unknown-id", "bad-ok", "protocol-2"],
)
async def test_a_broken_shim_is_a_shim_error(
    start: Start, body: str, expected: str, came: str
) -> None:
    began = time.monotonic()
    with pytest.raises(ShimError) as error:
        await start(shim(body))
    text = str(error.value)
    assert "JSON-lines shim" in text and "-c" in text and expected in text and came in text, text
    assert time.monotonic() - began < 5
    assert "dying" in text if "dying" in body else True  # its stderr's last lines come along


async def test_silence_is_a_shim_error_within_the_bounds(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_lines, "HELLO_TIMEOUT", 1.0)
    began = time.monotonic()
    with pytest.raises(ShimError, match=r"expected the hello line.*nothing within 1 s"):
        await start(shim("import time\ntime.sleep(60)\n"))
    assert time.monotonic() - began < 4
    monkeypatch.setattr(json_lines, "REQUEST_MARGIN", 0.5)
    began = time.monotonic()
    quick = {"token_timeout": 0.2, "connect_timeout": 0.2, "ready_timeout": 0.1}
    with pytest.raises(ShimError, match=r"the reply to 'create' \(id 1\); came none within 1 s"):
        await start(shim(HELLO + "import time\ntime.sleep(60)\n"), **quick)
    assert time.monotonic() - began < 4


async def test_a_shim_dying_mid_session_names_its_stderr_and_never_the_key(start: Start) -> None:
    body = HELLO + textwrap.dedent(
        """
        line = sys.stdin.readline()
        print('{"id": 1, "ok": true, "result": null}', flush=True)
        sys.stdin.readline()
        print("crashed while handling", line, file=sys.stderr, flush=True)
        sys.exit(1)
        """
    )
    client = await start(shim(body))
    with pytest.raises(ShimError) as error:
        await client.connect()
    text = str(error.value)
    assert "exit status 1" in text and "crashed while handling" in text, text
    assert client.settings.api_key not in text and "***" in text
    with pytest.raises(ShimError):  # the broken shim stays broken
        await client.state()


async def test_probe_names_the_client_or_says_why_not() -> None:
    before = children()
    info = probe(SHIM)
    assert info.name == "pytest-estuary" and "task_count" in info.capabilities
    with pytest.raises(ShimError, match="cannot start it"):
        probe(["/nonexistent/shim"])
    with pytest.raises(ShimError, match="not JSON"):
        probe(shim("print('hi')"))
    assert children() <= before


async def test_only_protocol_lines_reach_the_shims_stdout() -> None:
    body = """
        import os, sys
        from pytest_estuary.clients.shim import _Output
        output = _Output()
        print("a print")
        os.write(1, b"a native library writing to fd 1\\n")
        output.send({"hello": {"name": "quiet", "version": "1", "capabilities": [], "protocol": 1}})
        sys.stdin.read()
    """
    assert probe(shim(body)).name == "quiet"


EARLY_LOG = 'import json\nprint(json.dumps({"log": {"level": "WARNING", "message": "early"}}))\n'
SCRIPTED = EARLY_LOG + HELLO + textwrap.dedent(
    """
    def out(message):
        print(json.dumps(message), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "create":
            out({"log": {"level": "info", "message": "not a warning"}})
            out({"event": "connected", "payload": {"session": "s-1"}})
            out({"id": request["id"], "ok": True, "result": None})
        else:
            out({"log": {"level": "error", "message": "asked for " + request["op"]}})
            out({"id": request["id"], "ok": False, "unsupported": "nothing but create"})
    """
)


async def test_logs_events_and_unsupported_from_a_scripted_shim(start: Start) -> None:
    client = await start(shim(SCRIPTED))
    assert client.seen("connected") == [{"session": "s-1"}]
    with pytest.raises(Unsupported, match="cannot connect: nothing but create"):
        await client.connect()
    assert client.warnings == ["early", "asked for connect"]
    await client.aclose()  # its disconnect is unsupported too: closing stdin is enough
    assert client.returncode == 0


async def test_a_shim_ignoring_eof_is_killed(
    start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(json_lines, "CLOSE_TIMEOUT", 0.5)
    body = SCRIPTED + "import time\ntime.sleep(60)\n"
    client = await start(shim(body))
    began = time.monotonic()
    await client.aclose()
    assert client.returncode == -9 and time.monotonic() - began < 2
    assert "did not exit within 0.5 s of stdin's EOF; killing it" in caplog.text


async def test_an_inherited_library_setting_does_not_reach_a_present_client(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LIVEKIT_LIBRARY_ENV, "broken")  # the shim refuses a create that disagrees with it
    client = await start(voice_transport="livekit")
    await client.connect()
    assert await client.start_voice() == "livekit"
