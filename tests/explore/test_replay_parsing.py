"""The replay line: its forms, its round trip, and a clear error for anything else."""

from __future__ import annotations

import pytest

from pytest_estuary.explore_replay import ExploreReplay, ReplayError, ReplayStep, parse_replay


def test_a_number_is_a_seed() -> None:
    assert parse_replay(" 12345 ") == ExploreReplay(seed=12345)
    assert not parse_replay("0").is_finding


def test_a_finding_line_names_requirement_version_and_blob() -> None:
    replay = parse_replay("LK-9@6.170.27:AXicY2Bg+/A=")
    assert replay == ExploreReplay(requirement="LK-9", version="6.170.27", blob="AXicY2Bg+/A=")
    assert replay.is_finding
    assert parse_replay(replay.line()) == replay


def test_hypothesis_decorator_text_after_the_requirement() -> None:
    replay = parse_replay("WIRE-2 @reproduce_failure('6.170.27', b'AXicY2Bg')")
    assert replay == ExploreReplay(requirement="WIRE-2", version="6.170.27", blob="AXicY2Bg")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-3",
        "1.5",
        "LK9@6.1:AAA",
        "LK-9@six:AAA",
        "LK-9@6.170.27:",
        "LK-9@6.170.27:not base64!",
        "@reproduce_failure",
    ],
)
def test_anything_else_says_which_forms_exist(text: str) -> None:
    with pytest.raises(
        ReplayError, match=r"--estuary-explore-replay must be a seed .* or 'ID@HYPOTHESIS_VERSION:BLOB'"
    ):
        parse_replay(text)


def test_a_steps_line_names_the_rules_and_their_arguments() -> None:
    replay = parse_replay("TEXT-1:open_socket(slot=p1,style=connect); interrupt(slot=p2,form=2,back=0);room_leave()")
    assert replay.requirement == "TEXT-1" and replay.is_finding
    assert replay.steps == (
        ReplayStep("open_socket", (("slot", "p1"), ("style", "connect"))),
        ReplayStep("interrupt", (("slot", "p2"), ("form", 2), ("back", 0))),
        ReplayStep("room_leave"),
    )
    assert parse_replay(replay.line()) == replay


def test_a_steps_line_keeps_booleans() -> None:
    (step,) = parse_replay("LK-9:livekit_start(slot=p1,connect=True,form=0)").steps
    assert step.args == (("slot", "p1"), ("connect", True), ("form", 0))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("TEXT-1:open_socket", r"step 1 must be 'rule\(name=value,…\)', got 'open_socket'"),
        ("TEXT-1:open_socket();text(p1)", r"step 2's argument must be 'name=value', got 'p1'"),
        ("TEXT-1:open_socket(slot=p 1)", r"step 1's argument must be 'name=value', got 'slot=p 1'"),
    ],
)
def test_a_broken_step_is_named(text: str, says: str) -> None:
    with pytest.raises(ReplayError, match=says):
        parse_replay(text)
