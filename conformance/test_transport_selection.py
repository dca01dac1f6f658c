"""Client conformance, section 6 (SEL): how the client under test (``--estuary-client``) chooses
its voice transport."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import expect
from conformance.client_support import failure_of, started
from conformance.factories import SteppedTestedClients
from pytest_estuary.clients import ClientFailure

pytestmark = [pytest.mark.asyncio, pytest.mark.estuary_fake_only]


def sent_names(server: Any) -> list[str]:
    return [e.name for e in server.events.find(direction="in")]


@pytest.mark.estuary_case("SEL-1", "MUST")
async def test_sel_1_auto_uses_livekit_when_installed(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """`voice_transport="auto"` uses LiveKit when `livekit.rtc` is installed."""
    client = await tested_client(voice_transport="auto")
    chosen = await started(estuary_server, client, "livekit")
    in_use = (await client.state()).transport
    expect(chosen == "livekit" and in_use == "livekit", expected="transport 'livekit'", actual=(chosen, in_use))


@pytest.mark.estuary_case("SEL-1", "MUST")
async def test_sel_1_auto_uses_websocket_silently_without_the_library(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """`voice_transport="auto"` without the LiveKit library uses WebSocket, silently."""
    client = await tested_client(voice_transport="auto", livekit_library="missing")
    chosen = await started(estuary_server, client, "websocket")
    expect(chosen == "websocket", expected="transport 'websocket'", actual=chosen)
    expect(not client.warnings, expected="no warning for auto", actual=client.warnings)


@pytest.mark.estuary_case("SEL-2", "MUST")
async def test_sel_2_livekit_without_library_warns_and_uses_websocket(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """`voice_transport="livekit"` without the library falls back to WebSocket with a WARNING naming the package."""
    client = await tested_client(voice_transport="livekit", livekit_library="missing")
    chosen = await started(estuary_server, client, "websocket")
    expect(chosen == "websocket", expected="transport 'websocket'", actual=chosen)
    expect(
        any("livekit" in w.lower() for w in client.warnings),
        expected="a WARNING naming 'livekit'",
        actual=client.warnings,
    )


@pytest.mark.estuary_case("SEL-3", "MUST")
async def test_sel_3_websocket_never_touches_livekit(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """`voice_transport="websocket"` never sends `livekit_token`."""
    client = await tested_client(voice_transport="websocket")
    await started(estuary_server, client)
    await client.stop_voice()
    sent = sent_names(estuary_server)
    expect("livekit_token" not in sent and "start_voice" in sent, expected="start_voice, no livekit_token", actual=sent)


@pytest.mark.estuary_case("SEL-4", "MUST")
async def test_sel_4_unknown_transport_is_voice_not_supported(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """Any other `voice_transport` value is rejected with VOICE_NOT_SUPPORTED."""
    doing = "voice_transport='carrier-pigeon' and start_voice()"
    try:
        client = await tested_client(voice_transport="carrier-pigeon")
    except ClientFailure as refused:  # refused when built: as good as at start_voice()
        failure = refused
    else:
        failure = await failure_of(client.start_voice(), "VOICE_NOT_SUPPORTED", doing)
    expect(failure.code == "VOICE_NOT_SUPPORTED", expected=f"VOICE_NOT_SUPPORTED from {doing}", actual=failure)


@pytest.mark.estuary_case("SEL-5", "MUST")
async def test_sel_5_no_silent_switch_when_the_server_lacks_livekit(
    estuary_server: Any, tested_client: SteppedTestedClients
) -> None:
    """With "auto" and a server without LiveKit, start_voice() fails with a connection error, never switching to WebSocket."""
    estuary_server.misbehave(livekit_disabled=True)
    client = await tested_client(voice_transport="auto", token_timeout=1.0)
    failure = await failure_of(client.start_voice(), "a connection error", "start_voice() on a server without LiveKit")
    expect(failure.code == "CONNECTION_TIMEOUT", expected="CONNECTION_TIMEOUT", actual=failure)
    sent = sent_names(estuary_server)
    expect("start_voice" not in sent, expected="no WebSocket voice attempted", actual=sent)


@pytest.mark.estuary_case("SEL-6", "SHOULD")
async def test_sel_6_transport_in_use_is_observable(estuary_server: Any, tested_client: SteppedTestedClients) -> None:
    """The transport actually in use is observable on the client."""
    info = tested_client.info
    expect(
        "observable_transport" in info.capabilities,
        expected="the client tells the app which transport it uses",
        actual=f"{info.name} {info.version} does not (its adapter declares no 'observable_transport')",
    )
    client = await tested_client(voice_transport="websocket")
    before = (await client.state()).transport
    expect(before is None, expected="no transport before voice", actual=before)
    await started(estuary_server, client)
    during = (await client.state()).transport
    expect(during == "websocket", expected="'websocket' while voice runs", actual=during)
    await client.stop_voice()
    after = (await client.state()).transport
    expect(after is None, expected="no transport after stop", actual=after)
