"""estuary-browser-shim: this project's web client in headless Chromium against the real fake
server and livekit-server (speech through the page's microphone as real Opus, the bot's audio
measured on the page's speaker), and adapter modules that break in each documented way: one
ShimError naming the module, the op and the page's last console lines, and no Chromium left."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from fake_server import FakeEstuaryServer
from pytest_estuary import audio
from pytest_estuary.clients.interface import ClientSettings
from pytest_estuary.clients.json_lines import JsonLinesClient, ShimError
from pytest_estuary.targets import EstuaryTarget

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).parents[2]
WEB_CLIENT = ROOT / "examples" / "web-client"
SHIM = str(Path(sys.executable).parent / "estuary-browser-shim")
MARK = "ESTUARY_BROWSER_TEST_MARK"  # in every process a test's shim starts (Chromium inherits it)
SPEECH = audio.utterance(duration=0.6, lead=0.1, tail=0.6)
GONE_WITHIN = 10.0  # Chromium's helpers exit once the browser process is gone

Start = Callable[..., Awaitable[JsonLinesClient]]


def command(module: Path, *extra: str) -> list[str]:
    return [SHIM, "--module", str(module), *extra]


def marked(mark: str) -> list[psutil.Process]:
    """Live shim and Chromium processes of one test: Chromium's helpers carry its profile (made in
    the test's TMPDIR) on their command line; the shim and crashpad keep the environment mark.
    (The fake's lazily started bot worker may carry the mark too: it is not the shim's.)"""
    found = []
    for process in psutil.process_iter():
        try:
            line = " ".join(process.cmdline())
            if not any(word in line for word in ("estuary-browser-shim", "chrom")):
                continue
            if (mark in line or process.environ().get(MARK) == mark) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def assert_none_left(mark: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = []
    for process in left:
        try:
            described.append(" ".join(process.cmdline())[:160])
        except psutil.NoSuchProcess:
            pass
    assert not described, f"processes left {GONE_WITHIN:g} s after the shim ended: {described}"


@pytest.fixture
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A TMPDIR of this test's own for the shims it starts (their Chromium profiles land there).
    Short: Chromium puts a Unix socket in it, and socket paths end at 107 bytes."""
    value = tempfile.mkdtemp(prefix="ebs-", dir="/tmp")
    monkeypatch.setenv(MARK, value)
    monkeypatch.setenv("TMPDIR", value)
    # the adapters under test in tmp_path bundle with the web client's esbuild
    monkeypatch.setenv("PATH", f"{WEB_CLIENT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}")
    yield value
    shutil.rmtree(value, ignore_errors=True)


@pytest.fixture
def settings(estuary_server: FakeEstuaryServer, estuary_target: EstuaryTarget) -> Callable[..., ClientSettings]:
    def make(**overrides: Any) -> ClientSettings:
        values: dict[str, Any] = {
            "server_url": estuary_target.url,
            "api_key": estuary_target.api_key,
            "character_id": estuary_target.character_id,
            "player_id": f"web-{uuid.uuid4().hex[:8]}",
        }
        return ClientSettings(**{**values, **overrides})

    return make


@pytest_asyncio.fixture
async def start(settings: Callable[..., ClientSettings], mark: str) -> AsyncIterator[Start]:
    """``await start(module, **settings)``: the shim on ``module``, closed at teardown, nothing left."""
    made: list[JsonLinesClient] = []

    async def make(module: Path = WEB_CLIENT / "adapter.mjs", **overrides: Any) -> JsonLinesClient:
        client = await JsonLinesClient.start(command(module), settings(**overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
    assert_none_left(mark)


def final(payload: dict[str, Any]) -> bool:
    return payload.get("is_final") is True


async def test_livekit_voice_in_chromium_hears_speech_and_plays_the_bot(start: Start) -> None:
    client = await start(voice_transport="auto")
    assert client.info.name == "estuary-web-client"
    assert {"livekit_library", "unavailable_microphone", "task_count"} <= client.info.capabilities
    await client.connect()
    assert await client.start_voice() == "livekit"
    room = (await client.wait_for("livekit_connected", timeout=5, include_past=True))["room"]
    assert (await client.state()).room == room
    # say → the page's WebAudio microphone → livekit-client's Opus → the fake's STT
    await client.say(SPEECH.tobytes(), 48000)
    said = await client.wait_for("stt_response", final, timeout=15, include_past=True)
    assert said["text"] == "utterance 1"
    await client.wait_for("bot_response", final, timeout=15, include_past=True)

    speaker: dict[str, Any] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the bot's reply, played by the page, reaches its analyser
        speaker = (await client._request("state"))["speaker"]
        if speaker["loud_seconds"] >= 0.3:
            break
        time.sleep(0.2)
    assert speaker["loud_seconds"] >= 0.3 and speaker["peak_rms"] > 0.01, speaker
    await client.stop_voice()
    await client.wait_for("livekit_disconnected", timeout=5, include_past=True)


async def test_an_unavailable_microphone_is_not_allowed(start: Start) -> None:
    client = await start(voice_transport="websocket", microphone="unavailable")
    await client.connect()
    with pytest.raises(Exception) as failure:
        await client.start_voice()
    assert getattr(failure.value, "code", None) == "MICROPHONE_DENIED", failure.value
    assert "NotAllowedError" in str(getattr(failure.value, "cause", "")), failure.value


# --- adapters that break -------------------------------------------------------------------------
NO_EXPORT = 'console.log("marker: loaded");\nexport const adapter = {};\n'
THROWS = 'console.log("marker: about to throw");\nexport function create() { throw new TypeError("boom"); }\n'
HANGS = """
console.log("marker: hanging adapter");
export function create() { return { connect: () => new Promise(() => {}) }; }
"""
SYNTAX = "export function create( {\n"


async def broken_start(tmp_path: Path, source: str | None, **overrides: Any) -> tuple[Path, ShimError]:
    module = tmp_path / "adapter.mjs"
    if source is not None:
        module.write_text(textwrap.dedent(source))
    settings = ClientSettings("http://127.0.0.1:9", "not-a-key", "c", "p", **overrides)
    with pytest.raises(ShimError) as raised:
        client = await JsonLinesClient.start(command(module), settings)
        try:
            await client.connect()
        finally:
            await client.aclose()
    return module, raised.value


@pytest.mark.parametrize(
    ("source", "op", "says"),
    [
        (None, "op: start, before the hello", "no such file"),
        (NO_EXPORT, "op: loading the module, before the hello", "it exports adapter"),
        (THROWS, "op: create", "create() threw TypeError: boom"),
        (SYNTAX, "op: bundling, before the hello", "Expected identifier but found end of file"),
    ],
    ids=["missing", "no-export", "throws-in-create", "does-not-bundle"],
)
async def test_a_broken_module_is_one_clear_error(
    tmp_path: Path, mark: str, source: str | None, op: str, says: str
) -> None:
    module, error = await broken_start(tmp_path, source)
    message = str(error)
    assert f"module {module}" in message and op in message and says in message, message
    if source is not None and "marker" in source:
        assert "marker:" in message.split("the page's last console lines:")[-1], message
    assert_none_left(mark)


async def test_an_op_never_answered_ends_the_shim_before_the_harness_waits_out(tmp_path: Path, mark: str) -> None:
    module = tmp_path / "adapter.mjs"
    module.write_text(textwrap.dedent(HANGS))
    timeouts = {"token_timeout": 1.0, "connect_timeout": 1.0, "ready_timeout": 1.0}
    settings = ClientSettings("http://127.0.0.1:9", "not-a-key", "c", "p", **timeouts)
    client = await JsonLinesClient.start(command(module), settings)
    began = time.monotonic()
    try:
        with pytest.raises(ShimError) as raised:
            await client.connect()
    finally:
        await client.aclose()
    waited = time.monotonic() - began
    message = str(raised.value)
    assert f"module {module}" in message and "op: 'connect' (id 2)" in message, message
    assert "never answered within 8 s" in message and "marker: hanging adapter" in message, message
    assert waited < client.timeout, f"{waited:.1f} s: the harness itself would have given up at {client.timeout:g} s"
    assert_none_left(mark)


async def test_a_crashed_page_is_one_clear_error(tmp_path: Path, mark: str, settings: Callable[..., Any]) -> None:
    module = tmp_path / "adapter.mjs"
    module.write_text(textwrap.dedent(HANGS))
    client = await JsonLinesClient.start(command(module), settings())
    try:
        renderers = [p for p in marked(mark) if "--type=renderer" in " ".join(p.cmdline())]
        assert renderers, "no renderer process of this shim's Chromium"
        connecting = client.connect()
        for renderer in renderers:  # the page's process dies as it would on a renderer crash
            os.kill(renderer.pid, signal.SIGKILL)
        with pytest.raises(ShimError) as raised:
            await connecting
    finally:
        await client.aclose()
    message = str(raised.value)
    assert f"module {module}" in message and "the page crashed" in message, message
    assert "'connect' (id 2)" in message and "marker: hanging adapter" in message, message
    assert_none_left(mark)


async def test_a_missing_browser_names_what_to_install(tmp_path: Path) -> None:
    module = WEB_CLIENT / "adapter.mjs"
    settings = ClientSettings("http://127.0.0.1:9", "k", "c", "p")
    with pytest.raises(ShimError) as raised:
        await JsonLinesClient.start(command(module, "--chromium", str(tmp_path / "no-chromium")), settings)
    assert "apt-get install chromium" in str(raised.value) and "--chromium" in str(raised.value)
