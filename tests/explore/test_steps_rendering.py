"""A finding's steps: secrets cut, audio abbreviated, numbered plain text with the replay line."""

from __future__ import annotations

import json

from conformance.explore.steps import NO_ARGUMENT_TEXT, Entry, Step, abbreviate, render_steps

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ"


def test_abbreviate_cuts_keys_tokens_and_audio() -> None:
    payload = {"api_key": "est-0123456789abcdef", "token": JWT, "audio": "QUFB" * 200, "note": f"see {JWT}"}
    shown = json.dumps(abbreviate((payload,)))
    assert "0123456789abcdef" not in shown and JWT not in shown
    assert "<base64, 600 bytes>" in shown
    assert abbreviate(()) == NO_ARGUMENT_TEXT
    assert abbreviate((None,)) is None


def test_steps_render_numbered_with_events_in_time_order_and_the_replay() -> None:
    step = Step(1, "livekit_join(p1, None)", 0.5)
    step.sent.append(Entry(0.5, "sent", "p1", "livekit_join", None))
    step.received.append(Entry(0.7, "received", "p1", "<disconnect>", NO_ARGUMENT_TEXT))
    step.received.append(Entry(0.6, "received", "p1", "bot_response", {"is_final": False, "chunk_index": 0}))
    text = render_steps([Step(0, "open_socket(p1, auth=connect)", 0.0).to_json() | {"n": 1}, step.to_json() | {"n": 2}],
                        "--estuary-explore-replay 'LK-5@6.170.27:AAA'")  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "1. [0.000 s] open_socket(p1, auth=connect)"
    assert lines[1] == "2. [0.500 s] livekit_join(p1, None)"
    assert "1 partial bot_response / bot_voice chunk(s) not shown" in lines[2]
    assert lines[3].split() == ["0.500", "->", "p1", "livekit_join", "null"]
    assert lines[4].split()[1:4] == ["<-", "p1", "<disconnect>"]
    assert lines[-1] == "Replay: --estuary-explore-replay 'LK-5@6.170.27:AAA'"


def test_step_json_is_the_report_contract() -> None:
    step = Step(3, "text(p2, {'text': 'hello'})", 1.23456)
    step.sent.append(Entry(1.2345678, "sent", "p2", "text", {"text": "hello"}))
    assert step.to_json() == {
        "n": 3,
        "action": "text(p2, {'text': 'hello'})",
        "t": 1.235,
        "sent": [{"t": 1.235, "dir": "sent", "peer": "p2", "event": "text", "payload": {"text": "hello"}}],
        "received": [],
    }
