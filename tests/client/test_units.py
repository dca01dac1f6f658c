"""Pure logic: config validation, payload parsing, the emitter, transport selection rules, audio inputs."""

from __future__ import annotations

import asyncio
import base64
import logging

import numpy as np
import pytest

from pytest_estuary import audio
from pytest_estuary.client import (
    BotResponse,
    BotVoice,
    ConfigError,
    ErrorCode,
    EstuaryClient,
    EstuaryError,
    EventTimeout,
    PayloadError,
    SessionInfo,
    SttResponse,
    SyntheticAudioInput,
    select_transport,
)
from pytest_estuary.client import selection as selection_module
from pytest_estuary.client.emitter import Emitter
from pytest_estuary.client.events import parse
from pytest_estuary.client.signalling import backoff

GOOD = {"server_url": "http://127.0.0.1:1", "api_key": "est-secret-key", "character_id": "c", "player_id": "p"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("server_url", "ftp://x", "http(s)"),
        ("server_url", "", "non-empty"),
        ("character_id", "", "non-empty string"),
        ("player_id", 7, "non-empty string"),
        ("token_timeout", 0, "positive"),
        ("ready_timeout", float("nan"), "positive"),
        ("connect_timeout", True, "positive"),
        ("auth_style", "cookie", "'event'"),
        ("audio_sample_rate", 12345, "Hz rate"),
        ("reconnect", "yes", "True or False"),
        ("voice_transport", 3, "one of"),
        ("audio_input", object(), "AudioInput"),
    ],
)
def test_config_errors_name_field_expectation_and_value(field: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as failure:
        EstuaryClient(**{**GOOD, field: value})
    message = str(failure.value)
    assert message.startswith(f"INVALID_ARGUMENT: {field}: expected") and expected in message and "got" in message
    assert failure.value.field == field and failure.value.code is ErrorCode.INVALID_ARGUMENT


def test_config_error_for_api_key_never_shows_the_secret() -> None:
    with pytest.raises(ConfigError) as failure:
        EstuaryClient(**{**GOOD, "api_key": "   "})
    assert "api_key" in str(failure.value)
    client = EstuaryClient(**GOOD)
    assert "est-secret-key" not in repr(client) and "est-secret-key" not in repr(client.config)


def test_parse_typed_payloads() -> None:
    info = parse("session_info", {"session_id": "s", "conversation_id": "c", "character_id": "ch", "player_id": "p",
                                  "livekitToken": "eyJsecret"})
    assert isinstance(info, SessionInfo) and info.player_id == "p" and "eyJ" not in repr(info)
    assert parse("stt_response", {"text": "hi", "is_final": True}) == SttResponse("hi", True)
    reply = parse("bot_response", {"text": "yo", "is_final": False, "partial": True, "message_id": "m",
                                   "chunk_index": 0, "is_interjection": False})
    assert isinstance(reply, BotResponse) and reply.chunk_index == 0 and reply.partial
    pcm = audio.tone(220, 0.01, 16000)
    voice = parse("bot_voice", {"audio": base64.b64encode(pcm.tobytes()).decode(), "message_id": "m",
                                "chunk_index": 2, "is_final": True, "sample_rate": 16000})
    assert isinstance(voice, BotVoice) and voice.audio == pcm.tobytes() and voice.sample_rate == 16000
    assert parse("something_new", {"x": 1}) == {"x": 1}


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("session_info", {"session_id": "", "conversation_id": "c", "character_id": "c", "player_id": "p"},
         "session_id"),
        ("stt_response", {"text": "hi"}, "is_final"),
        ("stt_response", {"text": 3, "is_final": True}, "text"),
        ("bot_response", {"text": "x", "is_final": "yes"}, "is_final"),
        ("bot_voice", {"audio": "!!notbase64"}, "audio"),
        ("bot_voice", {"audio": base64.b64encode(b"abc").decode()}, "audio"),
        ("livekit_token", {"token": "t", "room": "r"}, "url"),
        ("livekit_ready", {}, "room"),
        ("livekit_ready", ["r"], "<payload>"),
    ],
)
def test_malformed_payloads_raise_payload_error_naming_the_field(event: str, payload: object, field: str) -> None:
    with pytest.raises(PayloadError) as failure:
        parse(event, payload)
    assert failure.value.code is ErrorCode.PROTOCOL_ERROR
    assert failure.value.event == event and failure.value.field == field
    assert event in str(failure.value) and repr(field) in str(failure.value)


@pytest.mark.asyncio
async def test_emitter_calls_sync_async_and_no_argument_listeners() -> None:
    emitter = Emitter()
    got: list[object] = []

    async def async_listener(payload: object) -> None:
        got.append(("async", payload))

    def no_args() -> None:
        got.append("bare")

    emitter.on("x", got.append)
    emitter.on("x", async_listener)
    emitter.on("x", no_args)
    emitter.emit("x", 1)
    await asyncio.sleep(0)
    assert got == [1, "bare", ("async", 1)]
    emitter.off("x", got.append)
    emitter.emit("x", 2)
    await emitter.aclose()
    assert 2 not in got and ("async", 2) in got


@pytest.mark.asyncio
async def test_emitter_broken_listener_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    emitter = Emitter()
    got: list[object] = []

    def broken(_payload: object) -> None:
        raise RuntimeError("boom")

    emitter.on("x", broken)
    emitter.on("x", got.append)
    with caplog.at_level(logging.ERROR, "pytest_estuary.client"):
        emitter.emit("x", 1)
    assert got == [1] and "boom" in caplog.text


@pytest.mark.asyncio
async def test_wait_for_gets_next_past_and_filtered_events() -> None:
    emitter = Emitter()
    emitter.emit("a", 1)
    assert await emitter.wait_for("a", include_past=True, timeout=0.1) == 1
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, emitter.emit, "a", 2)
    loop.call_later(0.02, emitter.emit, "a", 3)
    assert await emitter.wait_for("a", predicate=lambda p: p == 3, timeout=1.0) == 3
    assert not emitter._waiters


@pytest.mark.asyncio
async def test_wait_for_timeout_says_what_was_awaited_and_seen() -> None:
    emitter = Emitter()
    asyncio.get_running_loop().call_later(0.01, emitter.emit, "bot_response", None)
    with pytest.raises(EventTimeout) as failure:
        await emitter.wait_for("stt_response", timeout=0.1)
    assert "'stt_response'" in str(failure.value) and "bot_response" in str(failure.value)
    assert not emitter._waiters


def test_sel_4_unknown_transport_is_voice_not_supported() -> None:
    with pytest.raises(EstuaryError) as failure:
        select_transport("carrier-pigeon")
    assert failure.value.code is ErrorCode.VOICE_NOT_SUPPORTED and "carrier-pigeon" in str(failure.value)


def test_sel_1_to_3_with_library_present() -> None:
    # the real environment has livekit installed
    assert select_transport("auto") == "livekit"
    assert select_transport("livekit") == "livekit"
    assert select_transport("websocket") == "websocket"


def test_sel_2_rule_logic_with_library_absent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # pure rule logic; the real missing-library cases run in subprocesses (test_library_loading.py)
    monkeypatch.setattr(selection_module, "livekit_installed", lambda: False)
    with caplog.at_level(logging.WARNING, "pytest_estuary.client"):
        assert select_transport("auto") == "websocket"
    assert not caplog.records, "SEL-1: auto falls back silently"
    with caplog.at_level(logging.WARNING, "pytest_estuary.client"):
        assert select_transport("livekit") == "websocket"
    assert any(r.levelno == logging.WARNING and "'livekit'" in r.getMessage() for r in caplog.records)


def test_reconnect_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n) for n in range(1, 9)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0] and max(delays) == 5.0


@pytest.mark.asyncio
async def test_synthetic_input_plays_queued_audio_then_silence_and_resamples() -> None:
    source = SyntheticAudioInput()
    pcm = audio.tone(440, 0.1, 16000)
    playback = source.say(pcm, sample_rate=16000, timeout=1.0)
    await source.open(48000)
    first = source.read(4800)  # 0.1 s at 48 kHz: the tone, resampled
    assert abs(audio.dominant_frequency(first, 48000) - 440) < 15
    await playback
    assert playback.done and not np.any(source.read(480))
    await source.close()
    assert not source.is_open


@pytest.mark.asyncio
async def test_say_timeout_names_the_state() -> None:
    source = SyntheticAudioInput()
    with pytest.raises(EventTimeout, match="closed"):
        await source.say(audio.tone(440, 0.1), timeout=0.05)


def test_one_exception_root_keeps_the_builtin_bases() -> None:
    """Every error the client raises on purpose is an EstuaryError with a code; two keep a built-in base."""
    assert issubclass(ConfigError, EstuaryError) and issubclass(ConfigError, ValueError)
    assert issubclass(EventTimeout, EstuaryError) and issubclass(EventTimeout, TimeoutError)
    assert issubclass(PayloadError, EstuaryError)
    timeout = EventTimeout("'x'", 1.0, ["y"])
    assert timeout.code is ErrorCode.EVENT_TIMEOUT and str(timeout).startswith("EVENT_TIMEOUT: ")
    assert {c.value for c in ErrorCode} >= {
        "LIVEKIT_UNAVAILABLE", "CONNECTION_TIMEOUT", "CONNECTION_FAILED", "MICROPHONE_DENIED", "VOICE_NOT_SUPPORTED",
        "AUTH_FAILED", "NOT_CONNECTED", "VOICE_ALREADY_ACTIVE", "VOICE_NOT_ACTIVE",
    }
    assert "SESSION_ENDED" not in ErrorCode.__members__  # a socket closed before session_info is CONNECTION_FAILED


@pytest.mark.asyncio
async def test_send_text_rejects_bad_arguments_with_config_error() -> None:
    client = EstuaryClient(**GOOD)
    for text, text_only, field in (("", False, "text"), (3, False, "text"), ("hi", "yes", "text_only")):
        with pytest.raises(ConfigError) as failure:
            await client.send_text(text, text_only)  # type: ignore[arg-type]
        assert failure.value.field == field and failure.value.code is ErrorCode.INVALID_ARGUMENT


def test_synthetic_input_rejects_bad_audio_with_config_error() -> None:
    source = SyntheticAudioInput()
    with pytest.raises(ConfigError, match="pcm"):
        source.play([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sample_rate"):
        source.play(audio.tone(440, 0.01), sample_rate=0)


def test_typed_event_table_covers_every_app_event() -> None:
    """EVENT_PAYLOADS (and so the on/wait_for overloads) names exactly the events the client emits."""
    import typing

    from pytest_estuary.client import EVENT_PAYLOADS, EventName
    from pytest_estuary.client.events import APP_EVENTS

    assert set(EVENT_PAYLOADS) == set(APP_EVENTS) == set(typing.get_args(EventName))
