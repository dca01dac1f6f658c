"""Client conformance, section 6 (SEL): how our client chooses its voice transport."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import expect
from conformance.client_support import run_client_without_livekit, started
from pytest_estuary.client import ErrorCode, EstuaryError
from pytest_estuary.targets import ClientFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.estuary_fake_only]


@pytest.mark.estuary_case("SEL-1", "MUST")
async def test_sel_1_auto_uses_livekit_when_installed(estuary_server: Any, estuary_client: ClientFactory) -> None:
    """`voice_transport="auto"` uses LiveKit when `livekit.rtc` is installed."""
    client = await estuary_client(voice_transport="auto")
    chosen = await started(client, "livekit")
    expect(chosen == "livekit" and client.transport == "livekit", expected="transport 'livekit'", actual=chosen)


@pytest.mark.estuary_case("SEL-1", "MUST")
async def test_sel_1_auto_uses_websocket_silently_without_the_library(estuary_server: Any) -> None:
    """`voice_transport="auto"` without the LiveKit library uses WebSocket, silently."""
    out = run_client_without_livekit("missing", estuary_server.url, estuary_server.api_key, "sel1-nolib", "auto")
    expect(out.get("transport") == "websocket", expected="transport 'websocket'", actual=out)
    expect(not out["warnings"], expected="no warning for auto", actual=out["warnings"])


@pytest.mark.estuary_case("SEL-2", "MUST")
async def test_sel_2_livekit_without_library_warns_and_uses_websocket(estuary_server: Any) -> None:
    """`voice_transport="livekit"` without the library falls back to WebSocket with a WARNING naming the package."""
    out = run_client_without_livekit("missing", estuary_server.url, estuary_server.api_key, "sel2-nolib", "livekit")
    expect(out.get("transport") == "websocket", expected="transport 'websocket'", actual=out)
    expect(any("livekit" in w for w in out["warnings"]), expected="a WARNING naming 'livekit'", actual=out["warnings"])


@pytest.mark.estuary_case("SEL-3", "MUST")
async def test_sel_3_websocket_never_touches_livekit(estuary_server: Any, estuary_client: ClientFactory) -> None:
    """`voice_transport="websocket"` never sends `livekit_token`."""
    client = await estuary_client(voice_transport="websocket")
    await started(client)
    await client.stop_voice()
    sent = [e.name for e in estuary_server.events.find(direction="in")]
    expect("livekit_token" not in sent and "start_voice" in sent, expected="start_voice, no livekit_token", actual=sent)


@pytest.mark.estuary_case("SEL-4", "MUST")
async def test_sel_4_unknown_transport_is_voice_not_supported(
    estuary_server: Any, estuary_client: ClientFactory
) -> None:
    """Any other `voice_transport` value is rejected with VOICE_NOT_SUPPORTED."""
    with pytest.raises(EstuaryError) as failure:
        client = await estuary_client(voice_transport="carrier-pigeon")
        await client.start_voice()
    expect(
        failure.value.code is ErrorCode.VOICE_NOT_SUPPORTED, expected="VOICE_NOT_SUPPORTED", actual=failure.value.code
    )


@pytest.mark.estuary_case("SEL-5", "MUST")
async def test_sel_5_no_silent_switch_when_the_server_lacks_livekit(
    estuary_server: Any, estuary_client: ClientFactory
) -> None:
    """With "auto" and a server without LiveKit, start_voice() fails with a connection error, never switching to WebSocket."""
    estuary_server.misbehave(livekit_disabled=True)
    client = await estuary_client(voice_transport="auto", token_timeout=1.0)
    with pytest.raises(EstuaryError) as failure:
        await client.start_voice()
    expect(failure.value.code is ErrorCode.CONNECTION_TIMEOUT, expected="CONNECTION_TIMEOUT", actual=failure.value.code)
    sent = [e.name for e in estuary_server.events.find(direction="in")]
    expect("start_voice" not in sent, expected="no WebSocket voice attempted", actual=sent)


@pytest.mark.estuary_case("SEL-6", "SHOULD")
async def test_sel_6_transport_in_use_is_observable(estuary_server: Any, estuary_client: ClientFactory) -> None:
    """The transport actually in use is observable on the client."""
    client = await estuary_client(voice_transport="websocket")
    expect(client.transport is None, expected="no transport before voice", actual=client.transport)
    await started(client)
    expect(client.transport == "websocket", expected="'websocket' while voice runs", actual=client.transport)
    await client.stop_voice()
    expect(client.transport is None, expected="no transport after stop", actual=client.transport)
