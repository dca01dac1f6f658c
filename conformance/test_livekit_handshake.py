"""Server conformance, section 4 (LK): the LiveKit voice handshake, with a real room and real audio."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc

from conformance.checks import Stopwatch, decode_jwt_claims, expect, loosely_matches
from conformance.factories import PeerFactory, RtcPeerFactory
from conformance.handshake import (
    READY_BOUND,
    bot_track,
    join_room,
    leave_room,
    livekit_handshake,
    request_token,
    room_ends,
)
from conformance.peer import NO_ARGUMENT
from conformance.rtc_peer import RtcPeer, read_wav
from conformance.text import final_reply
from pytest_estuary import audio
from pytest_estuary.targets import EstuaryTarget
from pytest_estuary.waiting import WaitTimeout, wait_until

pytestmark = pytest.mark.asyncio

TOKEN_REQUEST_FORMS = {"no_argument": NO_ARGUMENT, "null": None, "push_to_talk": {"turn_mode": "push_to_talk"}}
BOT_PITCH_HZ = 220.0
SIGNAL_GRACE = 1.0  # seconds for the SFU to tell us about a participant the server already saw join


@pytest.mark.estuary_case("LK-1", "MUST")
async def test_lk_1_token_reply_within_10s(peer: PeerFactory, record_estuary_timing: Any) -> None:
    """`livekit_token` (no argument, null, or {turn_mode}) is answered within 10 s with {token: a JWT, url: ws:// or wss://, room: non-empty}."""
    p = peer()
    await p.session()
    for form, payload in TOKEN_REQUEST_FORMS.items():  # the first broken form ends the case
        reply, elapsed = await request_token(p, payload)  # bounded by LK-1's 10 s
        record_estuary_timing(f"token_round_trip[{form}]", elapsed)
        token, url, room = reply.get("token"), reply.get("url"), reply.get("room")
        context = f"livekit_token sent with {form}"
        expect(
            isinstance(token, str) and token.count(".") == 2, expected="token: a JWT", actual=str(token)[:8] + "…",
            context=context,
        )  # fmt: skip
        expect(str(url).startswith(("ws://", "wss://")), expected="url: ws:// or wss://", actual=url, context=context)
        expect(isinstance(room, str) and room, expected="room: non-empty string", actual=room, context=context)


@pytest.mark.estuary_case("LK-2", "MUST")
async def test_lk_2_livekit_accepts_token_with_the_right_grants(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """The LiveKit server at `url` accepts `token` for `room`: roomJoin for that room, publish/subscribe allowed, an identity, exp in the future."""
    p = peer()
    await p.session()
    reply, _ = await request_token(p, timeout=estuary_target.timeout)
    claims = decode_jwt_claims(reply["token"])
    video = claims.get("video", {})
    expect(video.get("roomJoin") is True, expected="grant roomJoin: true", actual=video)
    expect(video.get("room") == reply["room"], expected=f"grant room {reply['room']!r}", actual=video.get("room"))
    expect(
        video.get("canPublish") is not False and video.get("canSubscribe") is not False,
        expected="canPublish and canSubscribe not false",
        actual=video,
    )
    expect(claims.get("sub"), expected="a non-empty identity (sub)", actual=claims.get("sub"))
    expect(claims.get("exp", 0) > time.time(), expected="exp in the future", actual=claims.get("exp"))
    await join_room(rtc_peer(), reply, timeout=estuary_target.timeout, publish=False)


@pytest.mark.estuary_case("LK-3", "MUST")
async def test_lk_3_token_admits_only_its_room(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """The token does not admit its holder to any other room: its only room grant is the announced room."""
    p = peer()
    await p.session()
    reply, _ = await request_token(p, timeout=estuary_target.timeout)
    video = decode_jwt_claims(reply["token"]).get("video", {})
    expect(
        not video.get("roomAdmin") and not video.get("roomList") and not video.get("roomCreate"),
        expected="no admin/list/create grants",
        actual=video,
    )
    expect(
        video.get("room") == reply["room"], expected=f"room grant exactly {reply['room']!r}", actual=video.get("room")
    )
    room = rtc_peer()
    await join_room(room, reply, timeout=estuary_target.timeout, publish=False)
    expect(
        room.room.name == reply["room"], expected=f"the token lands in {reply['room']!r} only", actual=room.room.name
    )


@pytest.mark.estuary_case("LK-4", "SHOULD")
async def test_lk_4_token_lifetime_is_bounded(peer: PeerFactory, record_estuary_timing: Any) -> None:
    """The token's lifetime is bounded (at most a day; the fake server uses 10 min)."""
    p = peer()
    await p.session()
    reply, _ = await request_token(p)
    claims = decode_jwt_claims(reply["token"])
    expect("exp" in claims, expected="an exp claim", actual=sorted(claims))
    lifetime = float(claims["exp"]) - float(claims.get("nbf", claims.get("iat", time.time())))
    record_estuary_timing("token_lifetime", lifetime)
    # Only the bound is LK-4's; an exp already past is LK-2's ("exp in the future").
    expect(lifetime <= 86400, expected="exp - nbf ≤ 86400 s", actual=f"{lifetime:.0f} s")


LIVEKIT_JOIN_FORMS: dict[str, Callable[[str], Any]] = {  # form → its payload for a room
    "no_argument": lambda room: NO_ARGUMENT,
    "null": lambda room: None,
    "room": lambda room: {"room": room},
    "room_and_turn_mode": lambda room: {"room": room, "turn_mode": "push_to_talk"},
}


@pytest.mark.estuary_case("LK-5", "MUST")
async def test_lk_5_ready_for_the_same_room_within_5s(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget, record_estuary_timing: Any
) -> None:
    """After `livekit_join` (no argument, null, {room}, {room, turn_mode}), `livekit_ready {room}` naming the same room comes within 5 s (or `livekit_error {error}`), and no second answer follows."""
    p = peer()
    await p.session()
    answer, slowest = None, 0.0
    for form, make in LIVEKIT_JOIN_FORMS.items():  # one session, a token and a room per form
        reply, _ = await request_token(p)
        await join_room(rtc_peer(), reply, timeout=estuary_target.timeout)
        room = reply["room"]
        watch = Stopwatch()
        await p.emit("livekit_join", make(room))
        answer = await p.wait(("livekit_ready", "livekit_error"), timeout=READY_BOUND, since=watch.start)
        slowest = max(slowest, answer.t - watch.start)
        record_estuary_timing(f"join_to_ready[{form}]", answer.t - watch.start)
        if answer.name == "livekit_error":  # allowed by LK-5; the cases that need a room are BLOCKED by it
            error = answer.payload.get("error")
            expect(
                isinstance(error, str) and error,
                expected="livekit_error {error: non-empty text}",
                actual=answer.describe(),
            )
            return
        expect(
            answer.payload.get("room") == room,
            expected=f"livekit_ready {{room: {room!r}}} after livekit_join sent with {form}",
            actual=answer.describe(),
        )
    # The stream's end must not hide what follows: a late duplicate or a contradicting error. The
    # window is calibrated on this server's own answer time (3x, at least 1 s, at most LK-5's 5 s);
    # a late answer to an earlier form would have shown as a room mismatch above.
    assert answer is not None
    window = min(READY_BOUND, max(1.0, 3 * slowest))
    await p.quiet(("livekit_ready", "livekit_error"), within=window, since=answer.t + 1e-6)


@pytest.mark.estuary_case("LK-6", "MUST")
async def test_lk_6_bot_in_room_with_audio_at_ready(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget, record_estuary_timing: Any
) -> None:
    """When livekit_ready is sent, a `bot-*` participant is in the room publishing an audio track we can subscribe to."""
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    # The SFU announces participants and tracks on its own channel: allow one signalling delay.
    watch = Stopwatch()
    with contextlib.suppress(WaitTimeout):  # the expectations below say what was missing
        await wait_until(lambda: _bot_audio(room), timeout=SIGNAL_GRACE, awaited="the bot's audio track", interval=0.01)
    record_estuary_timing("ready_to_bot_seen", watch.lap())
    bots = room.bots()
    expect(
        bots,
        expected=f"a bot-* participant in the room at livekit_ready (+{SIGNAL_GRACE} s)",
        actual=sorted(room.room.remote_participants),
    )
    expect(
        _bot_audio(room),
        expected="the bot publishes an audio track",
        actual={b.identity: len(b.track_publications) for b in bots},
    )
    await room.wait_for_bot_track(timeout=5.0)  # subscribed for real


def _bot_audio(room: RtcPeer) -> list[rtc.RemoteTrackPublication]:
    return [
        pub for bot in room.bots() for pub in bot.track_publications.values() if pub.kind == rtc.TrackKind.KIND_AUDIO
    ]


LEAD_IN = 1.0  # seconds of silence before an utterance on a freshly published microphone


async def _speak_and_transcribe(p: Any, room: Any, wav: Path, timeout: float) -> tuple[list[Any], Any]:
    """Say ``wav`` on the microphone; returns (interim stt events, final stt event)."""
    watch = Stopwatch()
    # A second of silence first, as a person pauses after joining: a bot that subscribes to the
    # microphone a moment late (a loaded machine) must not miss the start of the words.
    room.say(audio.concat(audio.silence(LEAD_IN), read_wav(wav), audio.silence(0.8)))
    final = await p.wait(
        "stt_response",
        predicate=lambda e: e.payload.get("is_final") is True,
        since=watch.start,
        timeout=timeout,
    )
    interim = [
        e for e in p.seen("stt_response", since=watch.start) if e.payload.get("is_final") is False and e.t <= final.t
    ]
    return interim, final


@pytest.mark.estuary_case("LK-7", "SHOULD")
async def test_lk_7_bot_transcribes_the_microphone(
    peer: PeerFactory,
    rtc_peer: RtcPeerFactory,
    estuary_target: EstuaryTarget,
    utterance_files: list[tuple[Path, str]],
) -> None:
    """Speech published by the client yields stt_response over Socket.IO: interim (is_final false), then final."""
    wav, said = utterance_files[0]
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    await bot_track(room)
    interim, final = await _speak_and_transcribe(p, room, wav, estuary_target.timeout + 5)
    expect(interim, expected="at least one interim stt_response (is_final: false) before the final", actual="none")
    text = str(final.payload.get("text", ""))
    expect(loosely_matches(text, said), expected=f"a transcript close to {said!r}", actual=text)


@pytest.mark.estuary_case("LK-8", "SHOULD")
async def test_lk_8_reply_as_text_and_bot_audio_with_metadata_only_bot_voice(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """Replies arrive as bot_response and as audio on the bot's track; bot_voice is then metadata only {message_id, chunk_index, is_livekit: true}."""
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    bot = await bot_track(room)
    heard_before = len(room.audio_from(bot.identity))
    watch = Stopwatch()
    final = await final_reply(p, "Please answer out loud.")
    message_id = final.payload["message_id"]
    voice = await p.wait("bot_voice", predicate=lambda e: e.payload.get("message_id") == message_id, since=watch.start)
    chunk_index = voice.payload.get("chunk_index")
    expect(
        voice.payload.get("is_livekit") is True
        and "audio" not in voice.payload
        and isinstance(chunk_index, int)
        and not isinstance(chunk_index, bool)
        and chunk_index >= 0,
        expected="bot_voice {message_id, chunk_index: integer ≥ 0, is_livekit: true} without audio",
        actual=voice.describe(),
    )

    def voiced() -> bool:
        return audio.voiced_seconds(room.audio_from(bot.identity)[heard_before:], 48000) >= 0.3

    with contextlib.suppress(WaitTimeout):  # the expectation below says how much was heard
        await wait_until(voiced, timeout=estuary_target.timeout, awaited="0.3 s of bot audio", interval=0.1)
    heard = room.audio_from(bot.identity)[heard_before:]
    expect(
        audio.voiced_seconds(heard, 48000) >= 0.3,
        expected="≥ 0.3 s of bot audio on its track after the reply",
        actual=f"{audio.voiced_seconds(heard, 48000):.2f} s above -40 dBFS",
    )
    if estuary_target.mode == "fake":
        expect(
            audio.heard_voice(heard, 48000, BOT_PITCH_HZ),
            expected=f"the fake bot's {BOT_PITCH_HZ:.0f} Hz voice",
            actual=f"dominant {audio.dominant_frequency(heard, 48000):.0f} Hz",
        )


@pytest.mark.estuary_case("LK-9", "MUST")
async def test_lk_9_leave_removes_bot_and_deletes_room(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget, record_estuary_timing: Any
) -> None:
    """After `livekit_leave` the bot leaves and the room is deleted (our room connection ends) within 5 s."""
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    sent = await leave_room(p, room, None, "null")  # a refused form is WIRE-2's, which blocks this case
    record_estuary_timing("leave_to_room_deleted", await room_ends(room, sent, "livekit_leave"))


@pytest.mark.estuary_case("LK-9", "SHOULD")
async def test_lk_9_socket_disconnect_deletes_room(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """When the socket disconnects, the bot leaves and the room is deleted within 5 s."""
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    closed = Stopwatch()
    await p.close()
    await room_ends(room, closed, "the socket disconnected")


@pytest.mark.estuary_case("LK-9", "SHOULD")
@pytest.mark.estuary_fake_only
async def test_lk_9_voice_timeout_deletes_room(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget, estuary_server: Any
) -> None:
    """On `voice_timeout`, the bot leaves and the room is deleted within 5 s."""
    p = peer()
    info = await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    timed_out = Stopwatch()
    estuary_server.trigger_voice_timeout(player_id=info["player_id"])
    await room_ends(room, timed_out, "voice_timeout")


@pytest.mark.estuary_case("LK-10", "INFO")
async def test_lk_10_bot_state_attribute(
    peer: PeerFactory, rtc_peer: RtcPeerFactory, estuary_target: EstuaryTarget
) -> None:
    """The bot sets participant attribute `estuary.state` to `speaking` or `idle`."""
    p = peer()
    await p.session()
    room = rtc_peer()
    await livekit_handshake(p, room, timeout=estuary_target.timeout)
    bot = await bot_track(room)
    states: set[str] = set()

    def changed(attributes: dict[str, str], participant: Any) -> None:
        # Every change, not only what a poll happens to see: on a busy machine a short "speaking"
        # and the "idle" after it can both arrive between two looks.
        if participant.identity == bot.identity and "estuary.state" in attributes:
            states.add(attributes["estuary.state"])

    def both_seen() -> bool:
        states.add(bot.attributes.get("estuary.state", ""))
        return {"speaking", "idle"} <= states

    room.room.on("participant_attributes_changed", changed)
    try:
        await p.emit("text", {"text": "Talk, please."})
        with contextlib.suppress(WaitTimeout):  # the expectation below says which states were seen
            await wait_until(both_seen, timeout=estuary_target.timeout, awaited="estuary.state speaking and idle")
    finally:
        room.room.off("participant_attributes_changed", changed)
    expect({"speaking", "idle"} <= states, expected="estuary.state seen as speaking and as idle", actual=sorted(states))


@pytest.mark.estuary_case("LK-11", "INFO")
async def test_lk_11_livekit_capable_server_answers_token(peer: PeerFactory, estuary_target: EstuaryTarget) -> None:
    """A LiveKit-capable server answers `livekit_token` (a server without LiveKit answers livekit_error or nothing)."""
    p = peer()
    await p.session()
    watch = Stopwatch()
    await p.emit("livekit_token", None)
    got = await p.wait(("livekit_token", "livekit_error"), since=watch.start)
    expect(got.name == "livekit_token", expected="this server offers LiveKit voice", actual=got.describe())
