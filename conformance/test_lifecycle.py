"""Client conformance, section 8 (LIFE): mute, stop, app events, timeouts — for the client under
test (``--estuary-client``)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import expect
from conformance.client_support import started
from conformance.factories import SteppedTestedClients
from conformance.livekit_rooms import wait_until_gone
from pytest_estuary import audio
from pytest_estuary.clients import ClientState, ClientUnderTest
from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.verdicts import step
from pytest_estuary.waiting import never_within, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.estuary_fake_only]
TRANSPORTS = ["livekit", "websocket"]
TRANSCRIBES = {"livekit": "LK-7", "websocket": "WS-2"}  # the server requirement behind a transcript
STT_SETTLE = 1.5  # a recogniser's end-of-utterance silence (the fake's is 0.4 s), with room to spare
LEAVE_BOUND = 5.0  # LK-9: the room ends within 5 s
DUPLICATE_WINDOW = 1.0  # a duplicate disconnect event would come from the same teardown, within ms
RECONNECT_WATCH = 2.0  # the first three reconnect delays (0.25 + 0.5 + 1 s) and more
SPEECH_RATE = 48000
SENT_BOUND = 1.0  # an event emitted before stop_voice() returned reaches the server over loopback within ms


def final(payload: dict[str, Any]) -> bool:
    return bool(payload.get("is_final"))


async def speak(client: ClientUnderTest) -> float:
    """An utterance on the client's microphone; returns its length in seconds."""
    spoken = audio.utterance(duration=0.6, tail=0.6)
    await client.say(spoken.tobytes(), SPEECH_RATE)
    return len(spoken) / SPEECH_RATE


@pytest.mark.estuary_case("LIFE-1", "MUST")
async def test_life_1_muted_microphone_reaches_no_one(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """`toggle_mute()` flips `is_muted`, and while muted no microphone audio reaches the server."""
    client = await tested_client(voice_transport="livekit")
    await started(estuary_server, client)
    muted = await client.toggle_mute()
    expect(muted is True and (await client.state()).muted, expected="muted", actual=muted)
    seconds = await speak(client)
    # The whole utterance plays in real time; a server that heard it answers within its
    # end-of-utterance silence. Watch that long, and a second more.
    await never_within(
        lambda: estuary_server.events.find(name="stt_response", direction="out"),
        window=seconds + STT_SETTLE,
        what="an stt_response while muted",
    )
    unmuted = await client.toggle_mute()
    expect(unmuted is False, expected="unmuted", actual=unmuted)
    mark = len(client.events)
    await speak(client)
    with step("LK-7", "a transcript of speech on the microphone"):  # the server has to hear at all
        await client.wait_for("stt_response", final, timeout=10, after=mark)


@pytest.mark.estuary_case("LIFE-2", "MUST")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_life_2_stop_voice_leaves_and_can_start_again(
    estuary_server: Any, tested_client: SteppedTestedClients, livekit_server: LiveKitCredentials, transport: str
) -> None:
    """`stop_voice()` sends livekit_leave (LiveKit) or stop_voice (WebSocket), leaves the room, closes the input, and voice can start again."""
    client = await tested_client(voice_transport=transport)
    await started(estuary_server, client)
    await client.stop_voice()
    expected = "livekit_leave" if transport == "livekit" else "stop_voice"
    # A client may emit without waiting for the write (fire and forget): give the event a loopback moment.
    await wait_until(
        lambda: estuary_server.events.find(name=expected, direction="in"),
        timeout=SENT_BOUND,
        awaited=f"{expected} from the client",
        seen=lambda: [e.name for e in estuary_server.events.find(direction="in")],
    )
    state = await client.state()
    expect(state.transport is None and state.room is None, expected="no voice after stop", actual=state)
    expect(not state.input_open, expected="the audio input closed", actual=state)
    if transport == "livekit":  # the room left for real: the SFU no longer lists the client
        left = await wait_until_gone(livekit_server, client.player_id)
        expect(not left, expected="the client in no room on the LiveKit server", actual=left)
    again = await started(estuary_server, client)
    expect(again == transport, expected="voice starts again", actual=again)


@pytest.mark.estuary_case("LIFE-3", "MUST")
async def test_life_3_connected_then_disconnected_once_on_stop(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """`livekit_connected(room)` on livekit_ready, and `livekit_disconnected` exactly once when the room ends by stop."""
    client = await tested_client(voice_transport="livekit")
    await started(estuary_server, client)
    room = (await client.state()).room
    connected = [p.get("room") for p in client.seen("livekit_connected")]
    expect(connected == [room], expected=f"livekit_connected({room!r}) once", actual=connected)
    await client.stop_voice()
    await wait_until(lambda: client.seen("livekit_disconnected"), timeout=LEAVE_BOUND, awaited="livekit_disconnected")
    await never_within(
        lambda: len(client.seen("livekit_disconnected")) > 1,
        window=DUPLICATE_WINDOW,
        what="a second livekit_disconnected",
    )


@pytest.mark.estuary_case("LIFE-3", "MUST")
async def test_life_3_disconnected_once_when_the_server_deletes_the_room(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """`livekit_disconnected` fires exactly once when the server deletes a connected room."""
    client = await tested_client(voice_transport="livekit")
    await started(estuary_server, client)
    estuary_server.trigger_voice_timeout(player_id=client.player_id)
    await client.wait_for("livekit_disconnected", timeout=LEAVE_BOUND, include_past=True)
    await never_within(
        lambda: len(client.seen("livekit_disconnected")) > 1,
        window=DUPLICATE_WINDOW,
        what="a second livekit_disconnected",
    )


@pytest.mark.estuary_case("LIFE-4", "MUST")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_life_4_transcripts_and_replies_reach_the_app_alike(
    estuary_server: Any, tested_client: SteppedTestedClients, transport: str
) -> None:
    """`stt_response` and `bot_response` reach the app the same way on both transports."""
    client = await tested_client(voice_transport=transport)
    await started(estuary_server, client)
    mark = len(client.events)
    await speak(client)
    with step(TRANSCRIBES[transport], "a transcript of the speech"):
        heard = await client.wait_for("stt_response", final, timeout=10, after=mark)
    with step("TEXT-1", "a final bot_response"):
        reply = await client.wait_for("bot_response", final, timeout=10, after=mark)
    expect(isinstance(heard.get("text"), str) and heard["text"], expected="an stt_response with its text", actual=heard)
    expect(isinstance(reply.get("text"), str) and reply["text"], expected="a bot_response with its text", actual=reply)


@pytest.mark.estuary_case("LIFE-5", "SHOULD")
async def test_life_5_voice_timeout_keeps_text(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """`voice_timeout` releases voice and text keeps working."""
    client = await tested_client(voice_transport="websocket")
    await started(estuary_server, client)
    estuary_server.trigger_voice_timeout(player_id=client.player_id)
    await client.wait_for("voice_timeout", timeout=5, include_past=True)

    last: list[ClientState] = []

    async def released() -> bool:
        last[:] = [await client.state()]
        return last[0].transport is None and not last[0].input_open  # released: no transport, no capture

    await wait_until(released, timeout=2.0, awaited="voice released", seen=lambda: last)  # type: ignore[arg-type]
    mark = len(client.events)
    await client.send_text("still there?")
    with step("TEXT-1", "a final bot_response"):
        await client.wait_for("bot_response", final, timeout=5, after=mark)


@pytest.mark.estuary_case("LIFE-5", "SHOULD")
async def test_life_5_session_timeout_never_reconnects(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """`session_timeout` ends the session without an automatic reconnect."""
    client = await tested_client(reconnect=True)
    estuary_server.trigger_session_timeout(player_id=client.player_id)
    await client.wait_for("session_timeout", timeout=5, include_past=True)
    # Longer than the client's first three reconnect delays: a reconnect it should not make would show.
    await never_within(
        lambda: len(estuary_server.events.find(name="connect", direction="in")) > 1,
        window=RECONNECT_WATCH,
        what="a reconnect after session_timeout",
    )
