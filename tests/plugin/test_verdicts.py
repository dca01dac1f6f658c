"""The verdict model's pure logic: what a case raised → its verdict; steps → BLOCKED or transparent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_estuary.client import ConfigError, ErrorCode, EstuaryError, EventTimeout
from pytest_estuary.verdicts import Blocked, ProtocolViolation, classify, set_current_case, step, violation


@pytest.fixture(autouse=True)
def no_case() -> Iterator[None]:
    yield
    set_current_case(None)


@pytest.mark.parametrize(
    ("raised", "level", "verdict"),
    [
        (AssertionError("Expected: x"), "MUST", "FAIL"),
        (AssertionError("Expected: x"), "SHOULD", "NON-STRICT"),
        (TimeoutError("no reply"), "MUST", "FAIL"),
        (ConnectionRefusedError("refused"), "MUST", "FAIL"),
        (EstuaryError(ErrorCode.PROTOCOL_ERROR, "session_info: field 'session_id'"), "MUST", "FAIL"),
        (EventTimeout("stt_response", 1.0, []), "INFO", "NON-STRICT"),
        (ConfigError("token_timeout", "a number > 0", -1), "MUST", "ERROR"),
        (TypeError("'NoneType' object is not subscriptable"), "MUST", "ERROR"),
        (KeyError("room"), "SHOULD", "ERROR"),
        (Blocked("LK-5", "ready", "nothing in 5 s"), "MUST", "BLOCKED"),
    ],
)
def test_classify(raised: BaseException, level: str, verdict: str) -> None:
    assert classify(raised, level)["verdict"] == verdict


def test_a_failed_step_blocks_other_cases_and_fails_its_own() -> None:
    set_current_case("LK-6")
    with pytest.raises(Blocked) as blocked, step("LK-5", "livekit_ready"):
        raise AssertionError("Expected: livekit_ready\nActual:   nothing")
    assert (blocked.value.requirement, blocked.value.step) == ("LK-5", "livekit_ready")
    assert str(blocked.value) == "BLOCKED by LK-5 (livekit_ready): Expected: livekit_ready / Actual:   nothing"
    set_current_case("LK-5")
    with pytest.raises(AssertionError) as own, step("LK-5", "livekit_ready"):
        raise AssertionError("Expected: livekit_ready")
    assert not isinstance(own.value, Blocked)


def test_a_step_lets_harness_errors_through() -> None:
    set_current_case("LK-6")
    with pytest.raises(TypeError), step("LK-5", "livekit_ready"):
        raise TypeError("a bug of ours")


def test_a_violation_names_its_own_requirement_inside_any_step() -> None:
    set_current_case("CONN-4")
    with pytest.raises(Blocked) as blocked, step("CONN-2", "a session"):
        raise violation("WIRE-1", "session_info with no argument")
    assert blocked.value.requirement == "WIRE-1"
    set_current_case("WIRE-1")
    with pytest.raises(ProtocolViolation), step("CONN-2", "a session"):
        raise violation("WIRE-1", "session_info with no argument")
