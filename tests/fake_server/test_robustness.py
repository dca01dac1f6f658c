"""The fake server against clients that misuse it: reserved event names, sockets that never
authenticate, huge or unknown payloads, secrets in payloads, foreign origins, malformed packets."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from fake_server import EventLog, FakeEstuaryServer
from fake_server.wire import Pace, peek_event

BOUND = 5.0
API_KEY_LIKE = "sk-live-9f8e7d6c5b4a39281726354453627181"
JWT_LIKE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtcGxheWVyIn0.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEstuaryServer]:
    with FakeEstuaryServer(auth_deadline=1.0) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeEstuaryServer) -> None:
    fake.reset()


@pytest.mark.asyncio
async def test_reserved_event_names_are_unknown_events(fake: FakeEstuaryServer, make_peer: Any) -> None:
    peer = make_peer(fake.url)
    info = await peer.session(fake.api_key)
    for name in ("connect", "disconnect", "*", "message", "connect_error", "disconnecting"):
        await peer.emit(name, {"api_key": fake.api_key, "character_id": "c", "player_id": "intruder"})
        await peer.emit(name)
    await peer.text_round_trip()  # the session answers, on the same socket
    sessions = fake.sessions
    assert [s.session_id for s in sessions] == [info["session_id"]], "the session was replaced or ended"
    assert peer.sio.connected and not peer.payloads("error")
    logged = fake.events.find(name="disconnect", direction="in")
    assert logged and all(isinstance(e.payload, str) and e.payload.startswith("<") for e in logged), logged


@pytest.mark.asyncio
async def test_event_with_no_string_name_is_dropped_not_fatal(fake: FakeEstuaryServer, make_peer: Any) -> None:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    await peer.sio.eio.send('2/sdk,[17,{"a":1}]')  # a Socket.IO EVENT whose name is a number
    await peer.sio.eio.send("2/sdk,[]")
    await peer.text_round_trip()


@pytest.mark.asyncio
async def test_a_socket_that_never_authenticates_is_closed_at_the_deadline(
    fake: FakeEstuaryServer, make_peer: Any
) -> None:
    peer = make_peer(fake.url)
    start = time.monotonic()
    await peer.connect()  # /sdk without auth, and no authenticate event
    error = await peer.wait("auth_error", timeout=BOUND)
    await asyncio.wait_for(peer.disconnected.wait(), BOUND)
    assert 0.9 <= time.monotonic() - start <= 3.0
    assert "no authentication within 1 s" in error["error"]
    healthy = make_peer(fake.url)
    await healthy.session(fake.api_key)
    await asyncio.sleep(1.5)  # past the deadline: an authenticated socket stays
    await healthy.text_round_trip()


@pytest.mark.asyncio
async def test_a_bare_engine_io_socket_is_closed_at_the_deadline(fake: FakeEstuaryServer) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{fake.url}/socket.io/?EIO=4&transport=websocket")
        start = time.monotonic()
        while not ws.closed and time.monotonic() - start < BOUND:  # never opens a namespace
            await ws.receive(timeout=BOUND)
        assert ws.closed and time.monotonic() - start <= 3.0


@pytest.mark.asyncio
async def test_unauthenticated_and_unknown_payloads_are_only_summarised(
    fake: FakeEstuaryServer, make_peer: Any
) -> None:
    big = {"blob": "x" * 500_000, "more": list(range(10_000))}
    stranger = make_peer(fake.url)
    await stranger.connect()
    for _ in range(5):
        await stranger.emit("text", big)  # before authentication
    member = make_peer(fake.url)
    await member.session(fake.api_key, player_id="member")
    for _ in range(5):
        await member.emit("no_such_event", big)
    await member.text_round_trip()
    await member.emit("no_such_event", {"small": 1, "blob": "y" * 2000})
    await member.text_round_trip()
    held, size = fake.events.size
    assert size < 200_000, f"{held} events take ~{size} bytes"
    # Over 64 KB, from a socket not authenticated yet or for an unknown event, a packet is not even
    # decoded: its name is read from its head, its size kept. Smaller ones are summarised.
    summaries = [
        e.payload
        for e in fake.events.find(name="text", direction="in") + fake.events.find(name="no_such_event")
        if e.session_id is None or e.name == "no_such_event"
    ]
    assert len(summaries) == 11, summaries
    assert all(p.startswith("<not decoded, ") and p.endswith("-byte packet>") for p in summaries[:-1]), summaries
    assert summaries[-1].startswith("<dict, 2 keys (small, blob)"), summaries[-1]
    refusals = stranger.payloads("error")
    assert refusals and all("not authenticated" in r["message"] for r in refusals), refusals


@pytest.mark.asyncio
async def test_long_payloads_are_abbreviated_in_the_log(fake: FakeEstuaryServer, make_peer: Any) -> None:
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    await peer.emit("start_voice", None)
    await peer.wait("voice_started")
    pcm = bytes(9600)
    await peer.emit("stream_audio", {"audio": base64.b64encode(pcm).decode()})
    await peer.emit("text", {"text": "hello world " * 500})  # 6000 characters
    await peer.text_round_trip()
    [audio] = [e.payload for e in fake.events.find(name="stream_audio", direction="in")]
    assert audio == {"audio": "<base64, 9600 bytes>"}
    assert {"text": "<str, 6000 chars>"} in [e.payload for e in fake.events.find(name="text", direction="in")]


def test_the_event_log_is_a_ring_bounded_by_count_and_bytes() -> None:
    log = EventLog(max_events=100, max_bytes=50_000)
    for i in range(1000):
        log.record("sid", "s", "in", "text", {"text": f"message {i}", "pad": "z" * 900})
    held, size = log.size
    assert held <= 100 and size <= 50_000 and log.dropped == 1000 - held
    assert log.all()[-1].payload["text"] == "message 999"


@pytest.mark.asyncio
async def test_a_key_sent_in_a_payload_is_redacted_in_errors_the_log_and_control_api(
    fake: FakeEstuaryServer, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fake_server")
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    await peer.emit("livekit_token", {"turn_mode": API_KEY_LIKE})
    await peer.emit("livekit_join", {"room": JWT_LIKE})
    await peer.emit("text", {"text": 12, "note": API_KEY_LIKE})
    await peer.emit("client_interrupt", {"message_id": [API_KEY_LIKE]})
    await peer.emit("start_voice", {"turn_mode": JWT_LIKE})
    await peer.emit("stream_audio", {"audio": API_KEY_LIKE + "!"})
    await peer.text_round_trip()
    errors = json.dumps(peer.payloads("error") + peer.payloads("livekit_error") + peer.payloads("voice_error"))
    assert "turn_mode must be one of" in errors  # the errors still say what was wrong
    request = urllib.request.Request(
        f"{fake.url}/control/events", headers={"Authorization": f"Bearer {fake.control_token}"}
    )
    control = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=BOUND).read().decode())
    violations = json.dumps([v.__dict__ for v in fake.events.violations])
    places = {"errors": errors, "control API": control, "logs": caplog.text, "violations": violations}
    for where, text in places.items():
        assert API_KEY_LIKE not in text and JWT_LIKE not in text, f"a secret reached the {where}"
        assert API_KEY_LIKE[8:20] not in text and JWT_LIKE[40:60] not in text, f"part of a secret reached the {where}"


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("http://127.0.0.1:5173", True),
        ("http://localhost:3000", True),
        ("http://[::1]:8080", True),
        ("https://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("null", False),
    ],
)
@pytest.mark.asyncio
async def test_browsers_may_connect_from_loopback_origins_only(
    fake: FakeEstuaryServer, make_peer: Any, origin: str, accepted: bool
) -> None:
    peer = make_peer(fake.url)
    if accepted:
        await peer.connect({"api_key": fake.api_key, "character_id": "c", "player_id": "p"}, {"Origin": origin})
        await peer.wait("session_info")
        return
    with pytest.raises(Exception, match=r"(?i)not an accepted origin|connection error|400"):
        await peer.connect({"api_key": fake.api_key, "character_id": "c", "player_id": "p"}, {"Origin": origin})
    async with aiohttp.ClientSession() as http:
        url = f"{fake.url}/socket.io/?EIO=4&transport=polling"
        async with http.get(url, headers={"Origin": origin}) as response:
            assert response.status == 400
            assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.asyncio
async def test_allowed_origins_are_configurable(make_peer: Any) -> None:
    with FakeEstuaryServer(allowed_origins=["https://app.example"]) as server:
        peer = make_peer(server.url)
        await peer.connect(
            {"api_key": server.api_key, "character_id": "c", "player_id": "p"}, {"Origin": "https://app.example"}
        )
        await peer.wait("session_info")
        await peer.close()
    with pytest.raises(ValueError, match="allowed_origins"):
        FakeEstuaryServer(allowed_origins="https://app.example")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_malformed_packets_cost_a_few_warning_lines_not_tracebacks(
    fake: FakeEstuaryServer, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    frames = ["", "9", "4x", "42/sdk,", '42/sdk,["text"', "451-/sdk,[]", "45", "\x00", "6", '42/sdk,{"a":1}',
              "42/sdk," + "[" * 5000 + "]" * 5000]  # fmt: skip
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    for _ in range(10):
        for frame in frames:
            await _raw_send(peer, frame)
    await peer.text_round_trip()
    wire = [r for r in caplog.records if r.name.startswith("fake_server.wire") or r.name.startswith("aiohttp")]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in wire)
    assert len(wire) <= 6, [r.getMessage() for r in wire]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def _raw_send(peer: Any, frame: str) -> None:
    """One raw WebSocket frame on the peer's Engine.IO connection, below Socket.IO's encoder."""
    await peer.sio.eio.ws.send_str(frame)


@pytest.mark.asyncio
async def test_sockets_not_yet_authenticated_are_capped(make_peer: Any) -> None:
    with FakeEstuaryServer(max_unauthenticated=3, suite_utterances=False) as server:
        waiting = [make_peer(server.url) for _ in range(3)]
        for peer in waiting:
            await peer.connect()
        refused = make_peer(server.url)
        with pytest.raises(Exception, match=r"(?i)connection|401|refused|unauthorized"):
            await refused.connect()
        await waiting[0].emit("authenticate", {"api_key": server.api_key, "character_id": "c", "player_id": "p"})
        await waiting[0].wait("session_info")
        late = make_peer(server.url)
        await late.session(server.api_key, player_id="late")  # one place became free
        await late.text_round_trip()
        for peer in [*waiting, late]:
            await peer.close()


def test_the_head_of_an_event_packet_names_it_without_decoding_the_rest() -> None:
    assert peek_event('2/sdk,["no_such_event",{"blob":"' + "x" * 100_000) == ("/sdk", "no_such_event")
    assert peek_event('2/sdk,17["text",{}]') == ("/sdk", "text")
    assert peek_event('2["text"]') == ("/", "text")
    for other in ('0/sdk,{"api_key":"k"}', "2/sdk,[17,{}]", '2/sdk,["na\\"me"]', "3/sdk,1[{}]", "2/sdk,{}"):
        assert peek_event(other) is None, other


@pytest.mark.asyncio
async def test_a_handshake_storm_is_paced() -> None:
    pace = Pace(rate=200.0, burst=5)
    start = time.monotonic()
    await asyncio.gather(*(pace.take() for _ in range(25)))
    took = time.monotonic() - start
    assert 0.09 <= took <= 1.0, took  # 20 past the burst at 200 a second: ~0.1 s
    assert 18 <= pace.waited <= 20  # the burst (and the turn at "now") went at once


@pytest.mark.asyncio
async def test_a_polling_session_that_never_polls_is_gone_at_the_deadline(fake: FakeEstuaryServer) -> None:
    """Engine.IO's close waits for its CLOSE packet to be fetched: a polling session that never
    polls kept its socket, queue and tasks alive for good (250 of them after the abuse bench)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.url}/socket.io/?EIO=4&transport=polling") as response:
            assert response.status == 200
            sid = json.loads((await response.text())[1:])["sid"]
        engine = fake.engine.sio.eio
        assert sid in engine.sockets
        deadline = time.monotonic() + BOUND
        while (sid in engine.sockets or sid in engine.pings) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert sid not in engine.sockets and sid not in engine.pings, "the session outlived its auth deadline"


@pytest.mark.asyncio
async def test_a_closed_socket_is_released_at_once(fake: FakeEstuaryServer, make_peer: Any) -> None:
    """Each socket's ping task slept 25 s after its socket closed, holding it (and its queue)."""
    peer = make_peer(fake.url)
    await peer.session(fake.api_key)
    engine = fake.engine.sio.eio
    [sid] = list(engine.sockets)
    assert sid in engine.pings
    await peer.close()
    deadline = time.monotonic() + BOUND
    while (sid in engine.sockets or sid in engine.pings) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sid not in engine.sockets and sid not in engine.pings
