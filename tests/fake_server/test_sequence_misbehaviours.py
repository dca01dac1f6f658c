"""The sequence-only misbehaviours, seen by raw peers against the real fake and livekit-server.

Each test shows both halves of "sequence-only": every step of the sequence, on its own, is handled
as protocol.md says (with the setting on), and the sequence breaks the requirement it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from conformance.checks import Stopwatch
from conformance.handshake import join_room, livekit_handshake, request_token
from conformance.peer import RawPeer, WireEvent
from conformance.rtc_peer import RtcPeer
from conformance.text import final_reply, interrupted, is_final
from fake_server import FakeEstuaryServer, LiveKitConfig, Misbehaviour, MisbehaviourError
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.targets import EstuaryTarget

LEAVE_BOUND = 5.0  # LK-9: the room connection ends within 5 s of livekit_leave
QUIET = 1.5  # the good fake sends a whole reply within ~50 ms: this much silence means none is coming
SEQUENCE_SETTINGS = (
    "leave_mid_handshake_keeps_room",
    "stale_interrupt_cuts_next_reply",
    "playback_complete_after_interrupt_kills",
    "second_socket_steals_replies",
    "join_twice_two_bots",
)


@pytest.fixture(scope="module")
def fake(livekit_server: LiveKitCredentials) -> Iterator[FakeEstuaryServer]:
    config = LiveKitConfig(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    with FakeEstuaryServer(livekit=config) as server:
        yield server


class Peers:
    """Raw Socket.IO peers and LiveKit participants for one test, all closed at its end."""

    def __init__(self, fake: FakeEstuaryServer) -> None:
        self.target = EstuaryTarget(fake.url, fake.api_key, "c", "raw", "fake", timeout=5.0)
        self.made: list[RawPeer | RtcPeer] = []

    def peer(self, name: str = "peer") -> RawPeer:
        self.made.append(RawPeer(self.target, name=name))
        return self.made[-1]  # type: ignore[return-value]

    def room(self) -> RtcPeer:
        self.made.append(RtcPeer())
        return self.made[-1]  # type: ignore[return-value]

    async def aclose(self) -> None:
        for one in reversed(self.made):
            await one.close()


@pytest_asyncio.fixture
async def peers(fake: FakeEstuaryServer) -> AsyncIterator[Peers]:
    fake.reset()
    made = Peers(fake)
    yield made
    await made.aclose()
    fake.reset()  # the stray bots' rooms go with their sessions
    assert fake.live_rooms() == []


async def replies_to(p: RawPeer, text: str, *, within: float = QUIET) -> list[WireEvent]:
    """The bot_response chunks that reach ``p`` within ``within`` s of its ``text`` (up to a final one)."""
    watch = Stopwatch()
    await p.emit("text", {"text": text, "textOnly": True})
    try:
        await p.wait("bot_response", predicate=is_final, since=watch.start, timeout=within)
    except AssertionError:
        pass
    return p.seen("bot_response", since=watch.start)


async def still_serves(p: RawPeer) -> None:
    assert await final_reply(p, "still there?")
    assert p.sio.connected


def test_each_setting_is_known_and_checked() -> None:
    for name in SEQUENCE_SETTINGS:
        assert name in Misbehaviour.names()
        assert getattr(Misbehaviour(), name) is False  # off by default
        assert Misbehaviour().updated({name: True}).active() == {name: True}
        with pytest.raises(MisbehaviourError, match=f"{name} must be true or false"):
            Misbehaviour().updated({name: "yes"})


# -- LK-9: livekit_leave between livekit_token and livekit_join -------------------------------------


@pytest.mark.asyncio
async def test_leave_mid_handshake_keeps_room(fake: FakeEstuaryServer, peers: Peers) -> None:
    fake.misbehave(leave_mid_handshake_keeps_room=True)
    p = peers.peer()
    await p.session()
    # Alone, each step is right: a leave with no voice is accepted, a whole handshake's leave ends the room.
    await p.emit("livekit_leave", None)
    await still_serves(p)
    whole = peers.room()
    await livekit_handshake(p, whole, timeout=5.0)
    await p.emit("livekit_leave", None)
    await whole.wait_disconnected(timeout=LEAVE_BOUND)
    # The sequence: token, join the room, leave before livekit_join. The warm bot and the room stay.
    half = peers.room()
    reply, _ = await request_token(p)
    await join_room(half, reply, timeout=5.0)
    await p.emit("livekit_leave", None)
    with pytest.raises(AssertionError, match="room connection to end"):
        await half.wait_disconnected(timeout=LEAVE_BOUND)
    assert reply["room"] in fake.live_rooms()
    assert half.bots(), "the bot warmed up for the token is still in the room"
    await p.close()  # the session's end takes the stray bot and its room
    await half.wait_disconnected(timeout=LEAVE_BOUND)


async def _in_a_token_room_without_a_bot(
    fake: FakeEstuaryServer, peers: Peers
) -> tuple[RawPeer, RtcPeer, dict[str, Any]]:
    """Under no_bot: a session, its token, and the client's own participant in the token's room."""
    fake.misbehave(no_bot=True)
    p = peers.peer()
    await p.session()
    room = peers.room()
    reply, _ = await request_token(p)
    await join_room(room, reply, timeout=5.0)
    return p, room, reply


@pytest.mark.asyncio
async def test_a_token_room_joined_only_by_the_client_ends_at_leave_without_a_bot(
    fake: FakeEstuaryServer, peers: Peers
) -> None:
    """Found by the explorer against ``no_bot`` (no warm bot to take the room away): the token's room
    must end at livekit_leave even when no livekit_join made it the session's voice room (LK-9)."""
    p, half, reply = await _in_a_token_room_without_a_bot(fake, peers)
    await p.emit("livekit_leave", None)
    await half.wait_disconnected(timeout=LEAVE_BOUND)
    assert reply["room"] not in fake.live_rooms()


@pytest.mark.asyncio
async def test_a_new_token_ends_the_last_tokens_room_without_a_bot(fake: FakeEstuaryServer, peers: Peers) -> None:
    """Found by the explorer against ``no_bot``: a client in the first token's room asks for a second
    token; the first room must not outlive livekit_leave (at most one room per session, LK-9)."""
    p, first, reply = await _in_a_token_room_without_a_bot(fake, peers)
    second, _ = await request_token(p)
    assert second["room"] != reply["room"]
    await first.wait_disconnected(timeout=LEAVE_BOUND)
    await p.emit("livekit_leave", None)
    assert reply["room"] not in fake.live_rooms()


# -- LK-9: livekit_join twice ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_join_twice_two_bots(fake: FakeEstuaryServer, peers: Peers) -> None:
    fake.misbehave(join_twice_two_bots=True)
    p = peers.peer()
    await p.session()
    # Alone: a handshake gives one bot, and its leave ends the room.
    once = peers.room()
    await livekit_handshake(p, once, timeout=5.0)
    await once.wait_for_bot_track(timeout=5.0)
    assert len(once.bots()) == 1
    await p.emit("livekit_leave", None)
    await once.wait_disconnected(timeout=LEAVE_BOUND)
    # The sequence: the same livekit_join twice (each answered right), then leave. A bot and the room stay.
    twice = peers.room()
    shake = await livekit_handshake(p, twice, timeout=5.0)
    watch = Stopwatch()
    await p.emit("livekit_join", {"room": shake.room})
    ready = await p.wait(("livekit_ready", "livekit_error"), since=watch.start)
    assert ready.name == "livekit_ready" and ready.payload == {"room": shake.room}
    await asyncio.sleep(0.5)  # the SFU announces the second bot on its own channel
    assert len(twice.bots()) == 2
    await p.emit("livekit_leave", None)
    with pytest.raises(AssertionError, match="room connection to end"):
        await twice.wait_disconnected(timeout=LEAVE_BOUND)
    assert len(twice.bots()) == 1 and shake.room in fake.live_rooms()
    await p.close()
    await twice.wait_disconnected(timeout=LEAVE_BOUND)


# -- TEXT-1: client_interrupt with no reply streaming, then text --------------------------------------


@pytest.mark.asyncio
async def test_stale_interrupt_cuts_next_reply(fake: FakeEstuaryServer, peers: Peers) -> None:
    fake.misbehave(stale_interrupt_cuts_next_reply=True)
    p = peers.peer()
    await p.session()
    # Alone: a text gets its whole stream, an interrupt its interrupt.
    await final_reply(p, "Tell me something about rivers.")
    fresh = peers.peer("fresh")
    await fresh.session()
    await interrupted(fresh, {}, "{}")
    # The sequence: the interrupt found no reply streaming; the next reply stops after its first chunk.
    await interrupted(p, None, "null")
    cut = await replies_to(p, "Tell me something about lakes.")
    assert [c.payload["chunk_index"] for c in cut] == [0]
    assert not any(c.payload["is_final"] for c in cut)
    await still_serves(p)  # one interrupt cuts one reply


# -- WIRE-2: audio_playback_complete for a reply the client interrupted -------------------------------


@pytest.mark.asyncio
async def test_playback_complete_after_interrupt_kills(fake: FakeEstuaryServer, peers: Peers) -> None:
    fake.misbehave(playback_complete_after_interrupt_kills=True)
    p = peers.peer()
    await p.session()
    # Alone: the ack of a reply it sent, and of an id it never sent (interrupted or not), is silent.
    message_id = (await final_reply(p, "Say something short.")).payload["message_id"]
    watch = Stopwatch()
    await p.emit("audio_playback_complete", {"message_id": message_id})
    await interrupted(p, {"message_id": "msg-never-sent"}, "{message_id}")
    await p.emit("audio_playback_complete", {"message_id": "msg-never-sent"})
    await still_serves(p)
    assert not p.seen("error", since=watch.start)
    # The sequence: a reply, its interrupt, its ack. The server hangs up.
    message_id = (await final_reply(p, "Say something else.")).payload["message_id"]
    await interrupted(p, {}, "{}")
    await p.emit("audio_playback_complete", {"message_id": message_id})
    await p.wait("<disconnect>")
    assert not p.seen("error", since=watch.start)


# -- TEXT-1: a second socket for the same player ------------------------------------------------------


@pytest.mark.asyncio
async def test_second_socket_steals_replies(fake: FakeEstuaryServer, peers: Peers) -> None:
    fake.misbehave(player_id="twice", second_socket_steals_replies=True)  # per player, like the others
    first, second = peers.peer("first"), peers.peer("second")
    await first.session(player_id="twice")
    # Alone: a socket gets the replies to its texts.
    await final_reply(first, "Hello from the first socket.")
    # The sequence: a second socket for the same player; the first one's replies go to it.
    await second.session(player_id="twice")
    assert await replies_to(first, "Where is my answer?") == []
    stolen = [e.payload for e in second.seen("bot_response") if is_final(e)]
    assert [s["text"] for s in stolen] == ["You said: Where is my answer?"]
    # Other players are not affected, and once the second socket is gone the first is served again.
    other = peers.peer("other")
    await other.session()
    await still_serves(other)
    await second.close()
    await asyncio.sleep(0.2)  # the server hears the disconnect
    await still_serves(first)
