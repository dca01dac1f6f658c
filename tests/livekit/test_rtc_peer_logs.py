"""The conformance suite's raw LiveKit peer keeps JWTs out of the logs: livekit.rtc's native layer
logs a refused token whole ("401 Unauthorized - invalid token: eyJ…"), in any process that joins."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import pytest

from conformance.rtc_peer import RtcPeer
from pytest_estuary.livekit_server import LiveKitCredentials

pytestmark = pytest.mark.asyncio

LOG_WITHIN = 5.0  # the native log record reaches Python logging on its own thread


async def test_a_refused_token_is_logged_abbreviated(
    livekit_server: LiveKitCredentials, mint: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livekit")
    token = mint("room-logs", ttl=-120)
    peer = RtcPeer()
    try:
        with pytest.raises(Exception, match="401"):
            await peer.join(livekit_server.url, token, timeout=15)
        deadline = time.monotonic() + LOG_WITHIN
        while "invalid token" not in caplog.text:
            assert time.monotonic() < deadline, f"livekit logged no refusal: {caplog.text[-500:]}"
            await asyncio.sleep(0.1)
    finally:
        await peer.close(5.0)
    assert "invalid token: eyJh…" in caplog.text
    assert token not in caplog.text and not re.search(r"eyJ[\w-]{5,}", caplog.text), caplog.text[-800:]
