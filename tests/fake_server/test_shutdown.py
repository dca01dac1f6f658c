"""stop() gives the port back however the shutdown goes: a failing or an overlong shutdown used to
leave the listening socket open, and a later test failed on its ResourceWarning."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from fake_server import FakeEstuaryServer


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_failing_shutdown_still_closes_the_listening_socket(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeEstuaryServer().start()
    port = server.port

    async def broken() -> None:
        raise RuntimeError("the engine would not close")

    monkeypatch.setattr(server.engine, "aclose", broken)
    server.stop()
    assert _refused(port)
    assert "shutdown did not complete: RuntimeError: the engine would not close" in caplog.text


def test_a_shutdown_past_its_bound_still_closes_the_listening_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeEstuaryServer().start()
    port = server.port

    async def hangs() -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(server, "_disconnect_all", hangs)
    started = time.monotonic()
    server.stop(timeout=1.0)
    assert time.monotonic() - started < 5.0
    assert _refused(port)
