"""Client conformance, section 7 (ERR): the fake server misbehaves, the client under test
(``--estuary-client``) reports the exact code."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from conformance.checks import Stopwatch, expect
from conformance.client_support import HANDSHAKE, broken_step, failure_of, started
from conformance.factories import SteppedTestedClients
from conformance.livekit_rooms import wait_until_gone
from pytest_estuary.clients import ClientFailure, ClientUnderTest
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.verdicts import Blocked

pytestmark = [pytest.mark.asyncio, pytest.mark.estuary_fake_only]


async def start_failure(
    server: Any, client: ClientUnderTest, at: str | None = None, code: str | None = None
) -> tuple[ClientFailure, float]:
    """``start_voice()`` fails; returns the failure and the seconds it took.

    ``at`` is the handshake step the case breaks on purpose (LK-1 token, LK-2 room, LK-5 ready)
    and ``code`` the error it expects there. If the fake's log shows the server broke an earlier
    step, or went silent at that very step where the case expects another error, the case is
    BLOCKED by that step.
    """
    watch = Stopwatch()
    error = await failure_of(client.start_voice(), code or "an error", "start_voice()")
    if at is not None:
        reached = broken_step(server, client.player_id, "livekit")
        earlier = reached is not None and HANDSHAKE.index(reached) < HANDSHAKE.index(at)
        silent = reached == at and error.code == "CONNECTION_TIMEOUT" and code != "CONNECTION_TIMEOUT"
        if earlier or silent:
            raise Blocked(str(reached), "the handshake up to the step this case breaks", str(error))
    return error, watch.lap()


@pytest.mark.estuary_case("ERR-1", "MUST")
async def test_err_1_livekit_unavailable_when_the_library_cannot_load(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """LIVEKIT_UNAVAILABLE when LiveKit is selected but its library fails to load when voice starts."""
    client = await tested_client(voice_transport="livekit", livekit_library="broken")
    error, _ = await start_failure(estuary_server, client)
    expect(error.code == "LIVEKIT_UNAVAILABLE", expected="LIVEKIT_UNAVAILABLE", actual=error)
    expect("cannot open shared object" in error.message, expected="the load error in the message", actual=error)


@pytest.mark.estuary_case("ERR-2", "MUST")
async def test_err_2_no_token_reply_is_connection_timeout(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """CONNECTION_TIMEOUT when no `livekit_token` reply comes within the token timeout."""
    estuary_server.misbehave(livekit_disabled=True)
    client = await tested_client(voice_transport="livekit", token_timeout=1.0)
    error, elapsed = await start_failure(estuary_server, client, "LK-1", "CONNECTION_TIMEOUT")
    expect(error.code == "CONNECTION_TIMEOUT", expected="CONNECTION_TIMEOUT", actual=error)
    expect(0.9 <= elapsed <= 3.0, expected="failure after the 1 s token timeout", actual=f"{elapsed:.2f} s")


# case → (misbehaviour, the handshake step it breaks, the reason the message must carry)
FAILED_ROOMS: dict[str, tuple[dict[str, Any], str, str | re.Pattern[str]]] = {
    "wrong_secret": ({"token_wrong_secret": True}, "LK-2", "401"),
    "expired_token": ({"token_expired": True}, "LK-2", "401"),
    # The reason, not the URL: whatever refused or failed the connection, as LiveKit's SDK says it.
    "unreachable_url": (
        {"token_unreachable_url": True},
        "LK-2",
        re.compile(
            r"refused|failed to (connect|retrieve)|unreachable|could not (connect|establish)|timed out|timeout|error sending request",
            re.I,
        ),
    ),
    "livekit_error": ({"livekit_refused": "no voice for you"}, "LK-1", "no voice for you"),
}


@pytest.mark.estuary_case("ERR-3", "MUST")
@pytest.mark.parametrize("case", sorted(FAILED_ROOMS))
async def test_err_3_room_failures_are_connection_failed(
    estuary_server: Any, tested_client: SteppedTestedClients, case: str
) -> None:
    """CONNECTION_FAILED when the room connection fails (bad token, unreachable URL) or the server sends livekit_error."""
    settings, at, reason = FAILED_ROOMS[case]
    estuary_server.misbehave(**settings)
    client = await tested_client(voice_transport="livekit", connect_timeout=5.0)
    error, elapsed = await start_failure(estuary_server, client, at, "CONNECTION_FAILED")
    expect(error.code == "CONNECTION_FAILED", expected="CONNECTION_FAILED", actual=error)
    # ERR-5's part here: the reason itself is in the message, with the URL stripped so it cannot stand in.
    url_free = re.sub(r"wss?://\S+", "<url>", error.message)
    found = reason.search(url_free) if isinstance(reason, re.Pattern) else reason in url_free
    expect(
        found,
        expected=f"the underlying reason ({getattr(reason, 'pattern', reason)!r}) in the message",
        actual=error.message,
    )
    expect(elapsed <= 8.0, expected="a bounded failure", actual=f"{elapsed:.2f} s")


@pytest.mark.estuary_case("ERR-4", "MUST")
async def test_err_4_microphone_denied_when_input_cannot_open(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """MICROPHONE_DENIED when the audio input cannot be opened (here: no sound device or library at all)."""
    client = await tested_client(voice_transport="livekit", microphone="unavailable")
    error, _ = await start_failure(estuary_server, client)
    expect(error.code == "MICROPHONE_DENIED", expected="MICROPHONE_DENIED", actual=error)


@pytest.mark.estuary_case("ERR-5", "MUST")
async def test_err_5_message_has_the_reason_and_cause_is_kept(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """Every error's message includes the underlying reason, and `__cause__` keeps the original exception."""
    estuary_server.misbehave(token_wrong_secret=True)
    client = await tested_client(voice_transport="livekit")
    error, _ = await start_failure(estuary_server, client, "LK-2", "CONNECTION_FAILED")
    expect("invalid token" in error.message.lower(), expected="LiveKit's 'invalid token' reason", actual=error)
    expect(error.cause is not None, expected="__cause__ set", actual=error)


@pytest.mark.estuary_case("ERR-6", "MUST")
async def test_err_6_auth_failed_and_misuse_codes(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """AUTH_FAILED on auth_error; NOT_CONNECTED before connect; VOICE_ALREADY_ACTIVE / VOICE_NOT_ACTIVE on misuse."""
    idle = await tested_client(connect=False)
    for call, doing in ((idle.start_voice(), "start_voice()"), (idle.send_text("hi"), "send_text()")):
        failure = await failure_of(call, "NOT_CONNECTED", f"{doing} before connect()")
        expect(failure.code == "NOT_CONNECTED", expected=f"NOT_CONNECTED from {doing} before connect()", actual=failure)
    client = await tested_client(voice_transport="websocket")
    failure = await failure_of(client.stop_voice(), "VOICE_NOT_ACTIVE", "stop_voice() with no voice")
    expect(failure.code == "VOICE_NOT_ACTIVE", expected="VOICE_NOT_ACTIVE from stop_voice()", actual=failure)
    await started(estuary_server, client)
    failure = await failure_of(client.start_voice(), "VOICE_ALREADY_ACTIVE", "a second start_voice()")
    expect(failure.code == "VOICE_ALREADY_ACTIVE", expected="VOICE_ALREADY_ACTIVE", actual=failure)
    estuary_server.misbehave(auth_always_fails=True)
    refusing = await tested_client(connect=False)  # its connect is this case's own observation
    failure = await failure_of(refusing.connect(), "AUTH_FAILED", "connect() answered with auth_error")
    expect(failure.code == "AUTH_FAILED", expected="AUTH_FAILED", actual=failure)


@pytest.mark.estuary_case("ERR-7", "MUST")
@pytest.mark.parametrize(
    ("setting", "cleared"),
    [
        ({"token_wrong_secret": True}, {"token_wrong_secret": False}),
        ({"no_livekit_ready": True}, {"no_livekit_ready": False}),
        ({"livekit_refused": "x"}, {"livekit_refused": None}),
    ],
)
async def test_err_7_nothing_leaks_and_a_retry_succeeds(
    estuary_server: Any,
    tested_client: SteppedTestedClients,
    livekit_server: LiveKitCredentials,
    setting: dict[str, Any],
    cleared: dict[str, Any],
) -> None:
    """After a failed start_voice() nothing leaks (no room connection, no open input, no stray tasks) and the next one succeeds."""
    estuary_server.misbehave(**setting)
    client = await tested_client(voice_transport="livekit", ready_timeout=1.0)
    tasks_before = (await client.state()).tasks
    await start_failure(estuary_server, client)
    left = await wait_until_gone(livekit_server, client.player_id)
    expect(not left, expected="no room connection left for the client", actual=left)
    state = await client.state()
    expect(state.transport is None and not state.voice_active, expected="no voice state", actual=state)
    expect(state.room is None, expected="no room kept", actual=state)
    expect(not state.input_open, expected="the audio input closed", actual=state)
    if tasks_before is not None and state.tasks is not None:  # only a client that can count them
        expect(state.tasks <= tasks_before, expected=f"≤ {tasks_before} tasks", actual=state.tasks)
    estuary_server.misbehave(**cleared)
    retried = await started(estuary_server, client, "livekit")
    expect(retried == "livekit", expected="the retry succeeds", actual=retried)


@pytest.mark.estuary_case("ERR-8", "SHOULD")
async def test_err_8_no_ready_is_connection_timeout(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """No `livekit_ready` within the ready timeout gives CONNECTION_TIMEOUT."""
    estuary_server.misbehave(no_livekit_ready=True)
    ready_timeout = 1.0
    client = await tested_client(voice_transport="livekit", ready_timeout=ready_timeout)
    error, _ = await start_failure(estuary_server, client, "LK-5", "CONNECTION_TIMEOUT")
    failed_at = time.monotonic()
    expect(error.code == "CONNECTION_TIMEOUT", expected="CONNECTION_TIMEOUT", actual=error)
    joins = estuary_server.events.find(name="livekit_join", direction="in")
    expect(joins, expected="livekit_join sent before the wait for livekit_ready", actual="none")
    # The server logs livekit_join when it arrives, a loopback hop after the client started its
    # timer: allow 0.1 s below the bound, and 0.5 s above it for scheduling (and a shim's pipe).
    waited = failed_at - joins[-1].t  # the fake's log uses this process's monotonic clock
    expect(
        ready_timeout - 0.1 <= waited <= ready_timeout + 0.5,
        expected=f"the failure {ready_timeout:.1f} s (ready_timeout) after livekit_join (-0.1 s, +0.5 s)",
        actual=f"{waited:.2f} s",
    )


@pytest.mark.estuary_case("ERR-9", "SHOULD")
@pytest.mark.parametrize(("setting", "at"), [("ready_wrong_room", "LK-5"), ("token_other_room", "LK-2")])
async def test_err_9_room_mismatch_is_connection_failed_naming_both(
    estuary_server: Any, tested_client: SteppedTestedClients, setting: str, at: str
) -> None:
    """A mismatch between the token reply's room, the room joined and livekit_ready's room is CONNECTION_FAILED naming both."""
    client = await tested_client(voice_transport="livekit")
    # First a plain start: a server broken some other way BLOCKS here, not in the mismatch below.
    await started(estuary_server, client, "livekit")
    await client.stop_voice()
    estuary_server.misbehave(**{setting: True})
    error, _ = await start_failure(estuary_server, client, at, "CONNECTION_FAILED")
    expect(error.code == "CONNECTION_FAILED", expected="CONNECTION_FAILED", actual=error)
    rooms = [word.strip("'\",.()") for word in error.message.split() if "estuary-" in word]
    expect(len(set(rooms)) >= 2, expected="both room names in the message", actual=error.message)
