"""The client actions of protocol.md, as the explorer's rules run them, each with the answer it awaits.

An action records what the protocol promised (an :class:`Expectation`) and whether it came; the
invariants read those. A failed step that belongs to a requirement the explorer does not check
(a session that does not open, no token reply, a room the token does not open) is noted as
BLOCKED and the action ends: it is never a finding.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conformance.explore.world import HANG_UP, ExplorerPeer, World
from conformance.peer import NO_ARGUMENT, WireEvent
from conformance.rtc_peer import SAMPLE_RATE, RtcPeer, read_wav
from conformance.websocket_voice import CHUNK_SECONDS
from pytest_estuary.verdicts import is_protocol_observation
from pytest_estuary.waiting import wait_until

__all__ = [
    "BARGE_IN_TEXT",
    "FORMS",
    "MALFORMED",
    "RECORDINGS",
    "barge_in",
    "close_socket",
    "interrupt",
    "livekit_join",
    "livekit_leave",
    "livekit_token",
    "malformed",
    "open_session",
    "playback_complete",
    "probe",
    "room_connect",
    "room_leave",
    "say_line",
    "say_livekit",
    "say_websocket",
    "start_voice",
    "stop_voice",
    "text",
    "unknown_event",
]

RECORDINGS = sorted((Path(__file__).parents[1] / "utterances").glob("*.wav"))
WS_SAMPLE_RATE = 24000  # the session's default audio_sample_rate (WS-2)
_probes = itertools.count(1)
LEAVE_POLL = 0.1  # between RoomService listings while LK-9's bound runs

# Each event's documented forms (WIRE-2 and its section): no argument, null, and its object variants.
FORMS: dict[str, tuple[Any, ...]] = {
    "client_interrupt": (NO_ARGUMENT, None, {}, {"message_id": "<a reply>"}, {"message_id": "msg-unknown"}),
    "audio_playback_complete": (NO_ARGUMENT, None, {"message_id": "<a reply>"}, {"message_id": "msg-unknown"}),
    "livekit_token": (NO_ARGUMENT, None, {"turn_mode": "push_to_talk"}),
    "livekit_join": (
        NO_ARGUMENT,
        None,
        {"room": "<token room>"},
        {"room": "<token room>", "turn_mode": "push_to_talk"},
    ),
    "livekit_leave": (NO_ARGUMENT, None, {}),
    "start_voice": (NO_ARGUMENT, None, {"turn_mode": "push_to_talk"}),
    "stop_voice": (NO_ARGUMENT, None, {}),
    "say_line": ({"text": "A line to speak."}, {"text": "A line not to speak.", "text_only": True}),
    "text": ({"text": "hello"}, {"text": "hello", "textOnly": True}, {"text": "hello", "textOnly": False}),
}
# (event, payload, needs WebSocket voice): a known event with a field of the wrong type or a payload that
# is no object (WIRE-3: error naming the event), or audio that is no PCM16 base64 (WS-2: error).
MALFORMED: tuple[tuple[str, Any, bool], ...] = (
    ("text", {"text": 5}, False),
    ("text", ["a", "list"], False),
    ("text", "just a string", False),
    ("say_line", {"text": 5}, False),
    ("client_interrupt", {"message_id": 5}, False),
    ("audio_playback_complete", {"message_id": 5}, False),
    ("livekit_join", {"room": 5}, False),
    ("livekit_token", 7, False),
    ("start_voice", ["push_to_talk"], False),
    ("stop_voice", "now", False),
    ("livekit_leave", 3.5, False),
    ("stream_audio", {"audio": "***not base64***"}, True),
    ("stream_audio", {"audio": "AAAA"}, True),
)
UNKNOWN_FORMS: tuple[Any, ...] = (NO_ARGUMENT, None, {"x": 1}, "text", 7)
ACK_FORM = FORMS["audio_playback_complete"].index({"message_id": "<a reply>"})  # the one the SDK sends


def _fill(peer: ExplorerPeer, payload: Any, back: int = 0, reply: str | None = None) -> Any:
    """Placeholders in a form: the token's room; a reply's message_id: ``reply`` when given, else
    ``back`` replies before the newest (a client acks a reply when its audio ends, which is seldom
    the newest one)."""
    if not isinstance(payload, dict):
        return payload
    filled = dict(payload)
    for key, value in payload.items():
        if value == "<token room>":
            filled[key] = peer.token_rooms[-1] if peer.token_rooms else "no-room"
        elif value == "<a reply>" and reply is not None:
            filled[key] = reply
        elif value == "<a reply>":
            ids = list(dict.fromkeys(str(e.payload.get("message_id")) for e in peer.received("bot_response")))
            filled[key] = ids[-1 - min(back, len(ids) - 1)] if ids else "msg-none"
    return filled


def describe_form(payload: Any) -> str:
    return "no argument" if payload is NO_ARGUMENT else repr(payload)


# -- sessions -----------------------------------------------------------------------------------


async def open_session(world: World, slot: str, style: str) -> None:
    """Connect and authenticate a socket for the example's player (CONN-2 or CONN-3 as a step)."""
    peer = ExplorerPeer(world, world.target, slot)
    world.peers[slot] = peer
    requirement = "CONN-3" if style == "event" else "CONN-2"
    auth = peer.auth(player_id=world.player_id)
    try:
        world.log("sent", slot, "<connect>", ({"auth": "in an authenticate event" if style == "event" else auth},))
        await peer.open(auth=auth, style="event" if style == "event" else "connect")
    except Exception as exc:
        if not is_protocol_observation(exc):
            raise
        world.block(requirement, slot, f"the socket did not connect: {type(exc).__name__}: {exc}")
        peer.closing = True
        return
    got = await peer.first(("session_info", "auth_error"), 0.0, world.bounds.session)
    malformed = [e for e in peer.seen(("session_info", "auth_error")) if not e.well_formed]
    if got is None and malformed:  # the answer came without its object: WIRE-1's, not the session's
        world.block("WIRE-1", slot, f"the session's answer was malformed: {malformed[0].describe()}")
        return
    if got is None or got.name != "session_info":
        world.block(requirement, slot, f"no session_info: {got.describe() if got else 'nothing'}")
        return
    peer.authenticated = True


async def close_socket(world: World, slot: str) -> None:
    """The client disconnects this socket (a reconnect opens a new one for the same player)."""
    peer = world.peers.pop(slot)
    peer.closing = True
    for task in peer.streams:
        task.cancel()
    world.log("sent", slot, "<disconnect>", ())
    await peer.close()
    world.closed_peers.append(peer)


# -- text -----------------------------------------------------------------------------------------


def _final(event: WireEvent) -> bool:
    return isinstance(event.payload, dict) and event.payload.get("is_final") is True


def _message_id(event: WireEvent) -> object:
    return event.payload.get("message_id") if isinstance(event.payload, dict) else None


def _new_final(peer: ExplorerPeer) -> Callable[[WireEvent], bool]:
    """A final ``bot_response`` of a stream that has no chunk yet: the answer to what is sent next,
    not the end of a reply already streaming (a barge-in's, a ``say_line``'s). Taken as the answer,
    such an end once cleared a socket's unanswered events before the server had handled them."""
    streaming = {_message_id(e) for e in peer.received(("bot_response", "bot_voice"))} - {None}
    return lambda event: _final(event) and _message_id(event) not in streaming


async def text(world: World, slot: str, form: int) -> None:
    """``text`` → a final ``bot_response`` within the reply bound (TEXT-1)."""
    peer = world.peers[slot]
    payload = FORMS["text"][form]
    answer = _new_final(peer)
    since = await peer.send("text", payload)
    got = await peer.first("bot_response", since, world.bounds.reply, answer)
    if got is None and (peer.disconnected.is_set() or world.watch()):
        return  # the hang-up (WIRE-2's or WIRE-3's) or another broken invariant is the finding
    world.expect(
        "TEXT-1", slot, f"a final bot_response after text {payload!r}", None if got else _nothing("bot_response", peer)
    )


async def probe(world: World) -> None:
    """After every step, each open socket sends a text-only probe that must be answered (TEXT-1);
    its answer also marks the step's end: errors for the step's own events have come by then."""
    for peer in world.open_peers():
        payload = {"text": f"probe {next(_probes)}", "textOnly": True}
        answer = _new_final(peer)
        since = await peer.send("text", payload, probe=True)
        got = await peer.first("bot_response", since, world.bounds.reply, answer)
        if got is not None:
            peer.unanswered.clear()  # the server had everything this socket sent before the probe
        if (peer.disconnected.is_set() and not peer.closing) or (got is None and world.watch()):
            continue  # the hang-up or the broken invariant is the finding, not the missing reply
        world.expect(
            "TEXT-1", peer.name, f"a final bot_response to the probe {payload['text']!r} within "
            f"{world.bounds.reply:.1f} s", None if got else _nothing("bot_response", peer),
        )  # fmt: skip


def _nothing(awaited: str, peer: ExplorerPeer) -> str:
    return f"no {awaited} within the bound; last events:\n{peer.tail(6)}"


async def say_line(world: World, slot: str, form: int) -> None:
    await world.peers[slot].send("say_line", FORMS["say_line"][form])


async def interrupt(world: World, slot: str, form: int, back: int = 0) -> None:
    """``client_interrupt`` (TEXT-3, INFO: its answer is not checked; what follows it is)."""
    peer = world.peers[slot]
    await peer.send("client_interrupt", _fill(peer, FORMS["client_interrupt"][form], back))


BARGE_IN_TEXT = {"text": "tell me more"}  # a text with voice (TEXT-2): its reply is spoken


async def barge_in(world: World, slot: str, form: int, ack: bool) -> None:
    """The user talks over the bot, which is what ``client_interrupt`` is for (TEXT-3): a ``text``,
    then the interrupt as soon as its reply's first chunk (``bot_response`` or ``bot_voice``) is in,
    naming that reply where the form names one. With ``ack``, the client then says that reply's
    playback has ended, as the TypeScript SDK does after each reply's audio (TEXT-4). How an
    interrupted reply ends is not in protocol.md, so nothing is asked of it; the probes after the
    step still are."""
    peer = world.peers[slot]
    since = await peer.send("text", BARGE_IN_TEXT)
    first = await peer.first(("bot_response", "bot_voice"), since, world.bounds.reply)
    if first is None:
        if not (peer.disconnected.is_set() or world.watch()):
            world.expect("TEXT-1", slot, f"a bot_response after text {BARGE_IN_TEXT!r}", _nothing("bot_response", peer))
        return
    reply = None if _message_id(first) is None else str(_message_id(first))
    await peer.send("client_interrupt", _fill(peer, FORMS["client_interrupt"][form], reply=reply))
    if ack:
        await peer.send("audio_playback_complete", _fill(peer, FORMS["audio_playback_complete"][ACK_FORM], reply=reply))


async def playback_complete(world: World, slot: str, form: int, back: int = 0) -> None:
    """``audio_playback_complete``: accepted silently (TEXT-4, WIRE-2)."""
    peer = world.peers[slot]
    await peer.send("audio_playback_complete", _fill(peer, FORMS["audio_playback_complete"][form], back))


async def malformed(world: World, slot: str, index: int) -> None:
    """A malformed payload to a known event → ``error`` naming the event (WIRE-3; start_voice may
    answer ``voice_error``, WS-1)."""
    peer = world.peers[slot]
    event, payload, _ = MALFORMED[index]
    answers = ("error", "voice_error") if event == "start_voice" else ("error",)
    since = await peer.send(event, payload, documented=False)
    got = await peer.first(answers, since, world.bounds.reply, lambda e: _names(e, event))
    broken = None
    if got is None:
        if peer.disconnected.is_set() or world.watch():
            return  # the hang-up (WIRE-3's) or another broken invariant is the finding
        other = peer.received(answers, since)
        broken = f"{other[0].describe()} (does not name {event!r})" if other else _nothing(" or ".join(answers), peer)
    world.expect("WIRE-3", slot, f"{' or '.join(answers)} naming {event!r} after {event} {payload!r}", broken)


def _names(event: WireEvent, name: str) -> bool:
    payload = event.payload if isinstance(event.payload, dict) else {}
    return name in str(payload.get("message") or payload.get("error") or "")


async def unknown_event(world: World, slot: str, form: int) -> None:
    """An event protocol.md does not know: no answer required, the connection stays (WIRE-3)."""
    await world.peers[slot].send("no_such_event_in_the_protocol", UNKNOWN_FORMS[form], documented=False)


# -- WebSocket voice ------------------------------------------------------------------------------


async def start_voice(world: World, slot: str, form: int) -> None:
    """``start_voice`` → ``voice_started`` or ``voice_error`` within 10 s (WS-1)."""
    peer = world.peers[slot]
    since = await peer.send("start_voice", FORMS["start_voice"][form])
    got = await peer.first(("voice_started", "voice_error"), since, world.bounds.voice_start)
    if got is not None and got.name == "voice_started":
        peer.ws_voice = True
    if got is None and (peer.disconnected.is_set() or world.watch()):
        return
    world.expect("WS-1", slot, "voice_started or voice_error", None if got else _nothing("voice_started", peer))


async def stop_voice(world: World, slot: str, form: int) -> None:
    """``stop_voice`` → ``voice_stopped`` within the client's stop bound (WS-3)."""
    peer = world.peers[slot]
    for task in peer.streams:
        task.cancel()
    since = await peer.send("stop_voice", FORMS["stop_voice"][form])
    peer.ws_voice = False
    # A server may release all of the session's voice on stop_voice, a token's room too (protocol.md
    # does not say otherwise): joining that room afterwards would re-create it (LiveKit makes a room
    # on join), and the explorer would then blame the server for a room it made itself (LK-9).
    peer.left_rooms.update(peer.token_rooms)
    got = await peer.first("voice_stopped", since, world.bounds.voice_stop)
    if got is None and (peer.disconnected.is_set() or world.watch()):
        return
    world.expect("WS-3", slot, "voice_stopped", None if got else _nothing("voice_stopped", peer))


async def say_websocket(world: World, slot: str, recording: int) -> None:
    """Stream a shipped recording as ``stream_audio`` at real-time pace, in the background: the next
    steps run while it is spoken, as a client's would."""
    peer = world.peers[slot]
    pcm = read_wav(RECORDINGS[recording], WS_SAMPLE_RATE)
    peer.spoke = True
    step_samples = round(WS_SAMPLE_RATE * CHUNK_SECONDS)

    async def speak() -> None:
        for start in range(0, len(pcm), step_samples):
            if not (peer.ws_voice and peer.live):
                return
            data = pcm[start : start + step_samples].astype("<i2").tobytes()
            await peer.send("stream_audio", {"audio": base64.b64encode(data).decode("ascii")})
            await asyncio.sleep(CHUNK_SECONDS)

    peer.streams.append(asyncio.ensure_future(speak()))


def _end_websocket_speech(peer: ExplorerPeer) -> None:
    """A LiveKit token or leave: protocol.md does not say what becomes of WebSocket voice then (the
    fake ends it at a leave), so no audio is sent until ``voice_started`` again."""
    for task in peer.streams:
        task.cancel()
    peer.ws_voice = False


# -- LiveKit voice --------------------------------------------------------------------------------


async def livekit_token(world: World, slot: str, form: int) -> None:
    """``livekit_token`` → ``{token, url, room}`` (LK-1 as a step: no reply is BLOCKED, not a finding)."""
    peer = world.peers[slot]
    _end_websocket_speech(peer)
    since = await peer.send("livekit_token", FORMS["livekit_token"][form])
    got = await peer.first(("livekit_token", "livekit_error"), since, world.bounds.token)
    if got is None or got.name != "livekit_token":
        if not peer.disconnected.is_set():
            world.block("LK-1", slot, f"no livekit_token reply: {got.describe() if got else 'nothing'}")
        return
    missing = [k for k in ("token", "url", "room") if not isinstance(got.payload.get(k), str) or not got.payload[k]]
    if missing:
        world.block("LK-1", slot, f"a livekit_token reply without {', '.join(missing)}: {got.describe()}")
        return
    room = str(got.payload["room"])
    earlier = [r for r in dict.fromkeys(peer.token_rooms) if r != room]
    peer.token_rooms.append(room)
    peer.token_reply = got.payload
    if earlier:
        await _one_room_per_session(world, slot, earlier, room)


async def _one_room_per_session(world: World, slot: str, earlier: list[str], room: str) -> None:
    """A new token starts the session's new voice: the rooms of its earlier tokens are over, and
    gone within LK-9's 5 s (one live room per session, where the explorer can see rooms)."""
    peer = world.peers[slot]
    last = await _rooms_left_after(world, peer, earlier, _own_connections(world, slot, earlier))
    if last and not (peer.disconnected.is_set() or world.watch()):
        bound = f"{world.bounds.leave:.1f} s"
        what = f"at most one live room per session: rooms {earlier} deleted within {bound} of the token for {room!r}"
        world.expect("LK-9", slot, what, f"still live {bound} after the new token: {last}")


async def room_connect(world: World, slot: str) -> None:
    """The explorer's own participant joins the token's room and publishes its microphone (LK-2 as a step)."""
    peer = world.peers[slot]
    reply: dict[str, Any] = peer.token_reply
    connection = RtcPeer()
    world.rooms[reply["room"]] = (slot, connection)
    world.log("sent", slot, "<room connect>", ({"room": reply["room"]},))
    try:
        await connection.join(reply["url"], reply["token"], timeout=world.bounds.token)
    except Exception as exc:
        if not is_protocol_observation(exc):
            raise
        world.block("LK-2", slot, f"the token's room did not open: {type(exc).__name__}: {exc}")
        connection.disconnected_at = connection.disconnected_at or 0.0
        return
    if connection.room.name != reply["room"]:  # LK-2's step: the token must open its own room
        world.block("LK-2", slot, f"the token opened room {connection.room.name!r}, not {reply['room']!r}")
        await connection.close(world.bounds.leave)
        connection.disconnected_at = connection.disconnected_at or 0.0
        return
    await connection.publish_microphone()


async def room_leave(world: World, room: str) -> None:
    """The explorer's participant leaves a room on its own (no livekit_leave)."""
    slot, connection = world.rooms[room]
    world.log("sent", slot, "<room disconnect>", ({"room": room},))
    await connection.close(world.bounds.leave)
    connection.disconnected_at = connection.disconnected_at or 0.0


async def say_livekit(world: World, room: str, recording: int) -> None:
    """Speak a shipped recording on the explorer's microphone track in ``room``."""
    slot, connection = world.rooms[room]
    peer = world.peers.get(slot)
    if peer is not None:
        peer.spoke = True
    world.log("sent", slot, "<speech>", ({"room": room, "recording": RECORDINGS[recording].name},))
    connection.say(read_wav(RECORDINGS[recording], SAMPLE_RATE))


async def livekit_join(world: World, slot: str, form: int) -> None:
    """``livekit_join`` → ``livekit_ready {room}`` for the token's room, or ``livekit_error``, within 5 s (LK-5)."""
    peer = world.peers[slot]
    room = peer.token_rooms[-1]
    _end_websocket_speech(peer)
    since = await peer.send("livekit_join", _fill(peer, FORMS["livekit_join"][form]))
    got = await peer.first(("livekit_ready", "livekit_error"), since, world.bounds.ready)
    if got is None and (peer.disconnected.is_set() or world.watch()):
        return
    broken = None if got else _nothing("livekit_ready", peer)
    if got is not None and got.name == "livekit_ready" and got.payload.get("room") != room:
        broken = f"livekit_ready for another room: {got.describe()} (the token's room is {room!r})"
    world.expect("LK-5", slot, f"livekit_ready {{room: {room!r}}} or livekit_error", broken)


async def livekit_start(world: World, slot: str, connect: bool, form: int) -> None:
    """A client's LiveKit start: ``livekit_token``, the room connect when ``connect``, then
    ``livekit_join`` in ``form``; each part checked as its own rule checks it."""
    peer = world.peers[slot]
    await livekit_token(world, slot, 0)
    if not peer.fresh_token or not peer.live:
        return
    if connect and peer.token_rooms[-1] not in world.rooms:
        await room_connect(world, slot)
    if peer.live:
        await livekit_join(world, slot, form)


async def livekit_leave(world: World, slot: str, form: int) -> None:
    """``livekit_leave`` → every room this session was given is gone within 5 s (LK-9): the bot and
    the room (RoomService, where the LiveKit credentials are known) and the explorer's connection."""
    peer = world.peers[slot]
    rooms = list(dict.fromkeys(peer.token_rooms))
    warming = _bot_may_be_joining(peer)
    _end_websocket_speech(peer)
    await peer.send("livekit_leave", FORMS["livekit_leave"][form])
    peer.left_rooms.update(rooms)
    deadline = asyncio.get_running_loop().time() + world.bounds.leave
    if not rooms:
        return
    connections = _own_connections(world, slot, rooms)
    last = await _rooms_left_after(world, peer, rooms, connections)
    if (peer.disconnected.is_set() and not peer.closing) or (last and world.watch()):
        return
    what = f"rooms {rooms} deleted within {world.bounds.leave:.1f} s of livekit_leave"
    if last:
        world.expect("LK-9", slot, what, f"still live {world.bounds.leave:.1f} s after livekit_leave: {last}")
        return
    if not warming:
        return
    # Gone now is not yet deleted: a bot still joining can bring the room back before the server
    # removes it for good. What counts is the bound's end: one more look then, while the next steps
    # run (the sequence's end waits for it: in a minute on the good fake such waits were 85 % of the
    # time when every leave had one, hence only where a bot may be joining).
    remaining = functools.partial(_live_rooms, world, rooms, connections)
    world.pending.append(asyncio.ensure_future(_gone_at_deadline(world, slot, what, remaining, deadline)))


def _own_connections(world: World, slot: str, rooms: list[str]) -> list[RtcPeer]:
    return [c for room, (owner, c) in world.rooms.items() if owner == slot and room in rooms]


async def _live_rooms(world: World, rooms: list[str], connections: list[RtcPeer]) -> list[str]:
    """Those of ``rooms`` the explorer still sees: its connection to one has not ended, or (when the
    LiveKit keys are known) RoomService lists it."""
    left = [c.room.name for c in connections if c.disconnected_at is None and c.room.name]
    if world.livekit is not None:
        left += await _listed_rooms(world, rooms)
    return sorted(set(left))


async def _rooms_left_after(
    world: World, peer: ExplorerPeer, rooms: list[str], connections: list[RtcPeer]
) -> list[str]:
    """Those of ``rooms`` still live when LK-9's bound is over; it ends early when none is, the
    socket closed, or an invariant broke meanwhile."""
    last: list[str] = []

    async def gone() -> bool:
        nonlocal last
        last = await _live_rooms(world, rooms, connections)
        return not last or peer.disconnected.is_set() or world.watch()

    try:
        _ended: bool = await wait_until(  # typed: mypy cannot infer wait_until's result from gone alone
            gone, timeout=world.bounds.leave, awaited="every room of the session gone", interval=LEAVE_POLL
        )
    except TimeoutError:
        pass
    return last


def _bot_may_be_joining(peer: ExplorerPeer) -> bool:
    """A token was answered and no livekit_ready came after it: the server may be warming a bot up
    for that room (LK-11), or still joining one it gave up waiting for (livekit_error)."""
    tokens, readies = peer.received("livekit_token"), peer.received("livekit_ready")
    return bool(tokens) and (not readies or readies[-1].t < tokens[-1].t)


async def _gone_at_deadline(
    world: World, slot: str, what: str, remaining: Callable[[], Awaitable[list[str]]], deadline: float
) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
    back = await remaining()
    world.expect("LK-9", slot, what, f"{back} live {world.bounds.leave:.1f} s after livekit_leave" if back else None)


async def _listed_rooms(world: World, rooms: list[str]) -> list[str]:
    from livekit import api

    assert world.livekit is not None
    lk = api.LiveKitAPI(world.livekit.http_url, world.livekit.api_key, world.livekit.api_secret)
    try:
        listed = await lk.room.list_rooms(api.ListRoomsRequest(names=rooms))
        return [room.name for room in listed.rooms]
    finally:
        await lk.aclose()


def hung_up(peer: ExplorerPeer) -> bool:
    """The server closed this socket (the explorer did not)."""
    return peer.disconnected.is_set() and not peer.closing and bool(peer.seen(HANG_UP))
