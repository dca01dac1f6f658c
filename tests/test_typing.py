"""A type checker understands the client: mypy --strict accepts typed app code and rejects wrong code.

One mypy run checks two snippets: GOOD must pass clean; in WRONG every line marked ``# E: <code>``
must give exactly that error, and no other line may give one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOOD = '''
from typing import Literal, assert_type

from pytest_estuary.client import (
    AudioInput, BotResponse, EstuaryClient, EstuaryError, EventTimeout, LiveKitDisconnected, SttResponse,
    SyntheticAudioInput, TeardownFailure, WavAudioInput,
)


async def app(url: str) -> None:
    client = EstuaryClient(url, "key", "char", "player", voice_transport="livekit")
    transcripts: list[str] = []
    rooms: list[str] = []
    client.on("stt_response", lambda r: transcripts.append(r.text))
    client.on("livekit_connected", rooms.append)
    client.on("livekit_disconnected", lambda: None)
    client.on("livekit_disconnected", lambda *args: None)

    async def on_reply(reply: BotResponse) -> None:
        transcripts.append(reply.text)

    client.on("bot_response", on_reply)
    client.off("bot_response", on_reply)
    assert_type(await client.start_voice(), Literal["livekit", "websocket"])
    assert_type(client.audio_input, SyntheticAudioInput)
    await client.audio_input.say()
    reply = await client.wait_for("bot_response", predicate=lambda r: r.is_final, timeout=10)
    assert_type(reply, BotResponse)
    assert_type(await client.wait_for("stt_response"), SttResponse)
    assert_type(await client.wait_for("livekit_disconnected"), LiveKitDisconnected)
    assert_type(await client.wait_for("livekit_connected"), str)
    assert_type(await client.wait_for("teardown_failed"), TeardownFailure)
    wav = EstuaryClient(url, "key", "char", "player", audio_input=WavAudioInput("hello.wav"))
    assert_type(wav.audio_input, WavAudioInput)
    maybe: AudioInput | None = None
    assert_type(EstuaryClient(url, "key", "char", "player", audio_input=maybe).audio_input, AudioInput)
    try:
        await client.connect()
    except EventTimeout as timeout:
        assert_type(timeout.phase, str | None)
    except EstuaryError as error:
        print(error.code.value)
'''

WRONG = '''
from pytest_estuary.client import EstuaryClient, SttResponse, WavAudioInput


async def app(url: str) -> None:
    client = EstuaryClient(url, "key", "char", "player")
    client.on("stt_response", lambda r: r.message_id)  # E: call-overload
    client.on("stt_respons", print)  # E: call-overload
    reply: SttResponse = await client.wait_for("bot_response")  # E: assignment
    await client.wait_for("bot_response", predicate=lambda r: r.room)  # E: call-overload
    EstuaryClient(url, "key", "char", "player", voice_transport="carrier-pigeon")  # E: call-overload
    wav = EstuaryClient(url, "key", "char", "player", audio_input=WavAudioInput("hello.wav"))
    wav.audio_input.say()  # E: attr-defined
'''


def test_mypy_checks_event_payloads_transports_and_audio_inputs(tmp_path: Path) -> None:
    good, wrong = tmp_path / "good_app.py", tmp_path / "wrong_app.py"
    good.write_text(textwrap.dedent(GOOD))
    wrong.write_text(textwrap.dedent(WRONG))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-error-summary",
         "--show-error-codes", "--hide-error-context", "--config-file", "", str(good), str(wrong)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    errors = re.findall(r"^(.+?):(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.MULTILINE)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2 would be a crash or bad usage
    in_good = [e for e in errors if e[0].endswith("good_app.py")]
    assert not in_good, f"mypy rejects correct code:\n{result.stdout}"
    expected = {
        (number, match.group(1))
        for number, line in enumerate(wrong.read_text().splitlines(), start=1)
        if (match := re.search(r"# E: ([\w-]+)", line))
    }
    got = {(int(line), code) for path, line, code in errors if path.endswith("wrong_app.py")}
    assert got == expected, f"expected errors {sorted(expected)}, mypy said:\n{result.stdout}"
