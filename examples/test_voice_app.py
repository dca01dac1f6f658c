"""Example: testing an app built on Estuary with pytest-estuary (no conftest needed).

The same file runs against the embedded fake server (`pytest`) and against a real or staging
server (`pytest --estuary-live --estuary-url … --estuary-api-key …`): the tests that need the
fake server's controls are marked `estuary_fake_only` and are skipped in live mode.
"""

from __future__ import annotations

import pytest

from fake_server import FakeEstuaryServer
from pytest_estuary import ClientFactory
from pytest_estuary.client import ErrorCode, EstuaryError
from pytest_estuary.fixtures import AudioHelpers

pytestmark = pytest.mark.asyncio


async def test_text_chat_gets_a_complete_reply(estuary_client: ClientFactory) -> None:
    client = await estuary_client()
    await client.send_text("Hello there!")
    reply = await client.wait_for("bot_response", predicate=lambda r: r.is_final, timeout=10)
    assert reply.text


async def test_voice_round_trip_over_livekit(estuary_client: ClientFactory, estuary_audio: AudioHelpers) -> None:
    client = await estuary_client(voice_transport="livekit")
    rooms: list[str] = []
    client.on("livekit_connected", rooms.append)
    await client.start_voice()
    assert client.transport == "livekit" and rooms == [client.room]

    client.audio_input.say(estuary_audio.utterance(duration=1.0, sample_rate=48000))
    heard = await client.wait_for("stt_response", predicate=lambda r: r.is_final, timeout=10)
    assert heard.text
    await client.wait_for("bot_response", predicate=lambda r: r.is_final, timeout=10)
    await client.bot_audio.wait_for_sound(min_seconds=0.3, timeout=10)

    await client.stop_voice()
    assert client.transport is None


@pytest.mark.estuary_fake_only
async def test_app_reports_when_voice_is_down(
    estuary_server: FakeEstuaryServer, estuary_client: ClientFactory
) -> None:
    estuary_server.misbehave(livekit_disabled=True)
    client = await estuary_client(voice_transport="livekit", token_timeout=1.0)
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    assert failure.value.code is ErrorCode.CONNECTION_TIMEOUT
