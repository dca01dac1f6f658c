"""The invariants as pure checks over what a sequence recorded (no server: events are put in by hand)."""

from __future__ import annotations

import time
from typing import Any, cast

from conformance.explore.actions import _bot_may_be_joining, _new_final
from conformance.explore.bounds import Bounds
from conformance.explore.invariants import (
    lk_5_ready_for_the_token_room,
    text_1_reply_streams,
    wire_1_one_object_argument,
    wire_2_documented_forms_accepted,
    wire_3_malformed_gets_error_and_connection_stays,
)
from conformance.explore.world import ExplorerPeer, LoopThread, World
from conformance.peer import WireEvent
from pytest_estuary.explore_replay import ReplayStep
from pytest_estuary.targets import EstuaryTarget

TARGET = EstuaryTarget("http://127.0.0.1:1", "key-0123456789", "character", "player", "fake", 3.0)


def _world() -> tuple[World, ExplorerPeer]:
    world = World(TARGET, Bounds.for_timeout(3.0), cast(LoopThread, None))
    world.begin()
    world.start_step("open_socket(p1, auth=connect)", ReplayStep("open_socket"))
    peer = ExplorerPeer(world, TARGET, "p1")
    peer.authenticated = True
    world.peers["p1"] = peer
    return world, peer


def _in(peer: ExplorerPeer, name: str, *args: Any) -> None:
    peer.events.append(WireEvent(time.monotonic(), "in", name, args))


def _chunk(message_id: str, index: int, final: bool) -> dict[str, Any]:
    return {"text": "x", "is_final": final, "partial": not final, "message_id": message_id, "chunk_index": index}


def test_text_1_holds_for_an_asked_stream_in_order() -> None:
    world, peer = _world()
    peer.sent["text"] = 1
    for index, final in ((0, False), (1, False), (2, True)):
        _in(peer, "bot_response", _chunk("m1", index, final))
    assert text_1_reply_streams(world) is None


def test_text_1_breaks_on_a_skipped_index_a_chunk_after_the_final_and_an_unasked_stream() -> None:
    world, peer = _world()
    peer.sent["text"] = 1
    _in(peer, "bot_response", _chunk("m1", 0, False))
    _in(peer, "bot_response", _chunk("m1", 2, True))
    assert "chunk_index 1" in str(text_1_reply_streams(world))
    world, peer = _world()
    peer.sent["text"] = 1
    _in(peer, "bot_response", _chunk("m1", 0, True))
    _in(peer, "bot_response", _chunk("m1", 1, False))
    assert "nothing after a stream's final chunk" in str(text_1_reply_streams(world))
    world, peer = _world()
    _in(peer, "bot_response", _chunk("m9", 0, True))
    assert "a socket that sent no text" in str(text_1_reply_streams(world))
    peer.spoke = True  # speech may be answered: it is not counted
    assert text_1_reply_streams(world) is None


def test_text_1_breaks_on_an_expectation_that_was_not_met() -> None:
    world, _ = _world()
    world.expect("TEXT-1", "p1", "a final bot_response to the probe", "nothing came")
    assert text_1_reply_streams(world) == "p1: Expected: a final bot_response to the probe\nActual:   nothing came"


def test_wire_1_breaks_on_an_event_without_its_object() -> None:
    world, peer = _world()
    _in(peer, "session_info", {"session_id": "s"})
    assert wire_1_one_object_argument(world) is None
    _in(peer, "livekit_ready")
    assert "livekit_ready with exactly one object argument" in str(wire_1_one_object_argument(world))


def test_a_hang_up_is_wire_2_after_a_documented_form_and_wire_3_after_a_malformed_one() -> None:
    world, peer = _world()
    # the step's own event, not the probe sent after it before the server's close arrived
    peer.unanswered = [("audio_playback_complete", True, False), ("text", True, True)]
    _in(peer, "<disconnect>")
    peer.disconnected.set()
    assert "after audio_playback_complete (a documented form)" in str(wire_2_documented_forms_accepted(world))
    assert wire_3_malformed_gets_error_and_connection_stays(world) is None
    peer.unanswered = [("no_such_event_in_the_protocol", False, False), ("text", True, True)]
    assert wire_2_documented_forms_accepted(world) is None
    assert "after no_such_event_in_the_protocol (" in str(wire_3_malformed_gets_error_and_connection_stays(world))
    peer.unanswered = [("text", False, False)]
    assert wire_2_documented_forms_accepted(world) is None
    assert "after text (malformed or unknown)" in str(wire_3_malformed_gets_error_and_connection_stays(world))
    peer.closing = True  # the explorer closed it itself: no finding
    assert wire_3_malformed_gets_error_and_connection_stays(world) is None


def test_a_hang_up_after_a_step_of_several_events_is_blamed_on_its_last() -> None:
    world, peer = _world()
    # barge_in: text, client_interrupt, audio_playback_complete, then the probe
    peer.unanswered = [("text", True, False), ("client_interrupt", True, False),
                       ("audio_playback_complete", True, False), ("text", True, True)]  # fmt: skip
    _in(peer, "<disconnect>")
    peer.disconnected.set()
    assert "closed the connection after audio_playback_complete" in str(wire_2_documented_forms_accepted(world))


def test_a_late_look_at_the_rooms_only_while_a_bot_may_be_joining() -> None:
    _, peer = _world()
    assert not _bot_may_be_joining(peer)  # no token: no room, no bot
    _in(peer, "livekit_token", {"token": "t", "url": "ws://x", "room": "r1"})
    assert _bot_may_be_joining(peer)  # LK-11: warming up for r1
    _in(peer, "livekit_ready", {"room": "r1"})
    assert not _bot_may_be_joining(peer)  # the bot is in
    _in(peer, "livekit_token", {"token": "t", "url": "ws://x", "room": "r2"})
    assert _bot_may_be_joining(peer)  # a new token: a new warm-up


def test_wire_2_breaks_on_an_error_in_a_step_of_documented_forms_only() -> None:
    world, _ = _world()
    world.log("received", "p1", "error", ({"message": "client_interrupt: no reply in flight"},))
    assert "no error in a step that sent documented forms only" in str(wire_2_documented_forms_accepted(world))
    world.malformed_sent.add("p1")
    assert wire_2_documented_forms_accepted(world) is None


def test_lk_5_breaks_on_a_ready_without_a_join() -> None:
    world, peer = _world()
    _in(peer, "livekit_ready", {"room": "r1"})
    assert "livekit_ready only in answer to livekit_join" in str(lk_5_ready_for_the_token_room(world))
    peer.sent["livekit_join"] = 1
    assert lk_5_ready_for_the_token_room(world) is None


def test_an_answer_is_the_final_chunk_of_a_stream_that_starts_after_the_question() -> None:
    """A probe once took the end of a barge-in's reply, already streaming, for its own answer, and
    cleared the socket's unanswered events before the server had handled them all."""
    _, peer = _world()
    _in(peer, "bot_response", _chunk("msg-streaming", 0, False))
    answer = _new_final(peer)  # taken when the probe is sent
    assert not answer(WireEvent(time.monotonic(), "in", "bot_response", (_chunk("msg-streaming", 1, True),)))
    assert answer(WireEvent(time.monotonic(), "in", "bot_response", (_chunk("msg-probe", 2, True),)))
    assert not answer(WireEvent(time.monotonic(), "in", "bot_response", (_chunk("msg-probe", 1, False),)))
