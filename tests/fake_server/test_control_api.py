"""The standalone fake server: its CLI and the JSON control API, driven from another process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import socketio

Standalone = Callable[..., dict[str, Any]]


def call(server: dict[str, Any], method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server['url']}/control/{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token if token is not None else server['control_token']}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def session_events(server: dict[str, Any], player_id: str, send: list[tuple[str, Any]], until: str) -> list[str]:
    """Connect as ``player_id``, send events, return the names received until ``until`` arrives."""
    client = socketio.AsyncClient(reconnection=False)
    names: list[str] = []
    done = asyncio.Event()

    async def on_any(event: str, *_args: Any) -> None:
        names.append(event)
        if event == until:
            done.set()

    client.on("*", on_any, namespace="/sdk")
    auth = {"api_key": server["api_key"], "character_id": "c", "player_id": player_id}
    await client.connect(server["url"], namespaces=["/sdk"], transports=["websocket"], auth=auth)
    try:
        for name, payload in send:
            await client.emit(name, payload, namespace="/sdk")
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await client.disconnect()
    return names


def test_cli_prints_url_key_and_control_token(standalone_fake: Standalone) -> None:
    server = standalone_fake()
    assert server["url"].startswith("http://127.0.0.1:")
    assert server["api_key"] and server["control_token"]
    status, state = call(server, "GET", "state")
    assert status == 200 and state["sessions"] == [] and state["misbehaviour"] == {}


def test_control_api_refuses_a_missing_or_wrong_token(standalone_fake: Standalone) -> None:
    server = standalone_fake()
    status, body = call(server, "GET", "state", token="wrong")
    assert status == 401 and "control token" in body["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"no_such_setting": True}, "unknown misbehaviour setting 'no_such_setting'"),
        ({"no_bot": "yes"}, "no_bot must be true or false"),
        ({"token_reply_missing": "secret"}, "token_reply_missing must be one of"),
        ({"delay": {"livekit_token": -1}}, "delay must be an object of event name"),
    ],
)
def test_bad_misbehaviour_is_a_400_naming_the_field(standalone_fake: Standalone, body: Any, message: str) -> None:
    server = standalone_fake()
    status, answer = call(server, "POST", "misbehave", body)
    assert status == 400 and message in answer["error"], answer


@pytest.mark.asyncio
async def test_misbehave_per_player_script_events_and_reset(standalone_fake: Standalone) -> None:
    server = standalone_fake()
    assert call(server, "POST", "misbehave", {"player_id": "broken", "livekit_refused": "no voice today"})[0] == 200
    assert call(server, "POST", "script", {"replies": ["Scripted hello."]})[0] == 200
    refused = await session_events(server, "broken", [("livekit_token", None)], until="livekit_error")
    assert "livekit_error" in refused
    fine = await session_events(server, "fine", [("livekit_token", None)], until="livekit_token")
    assert "livekit_token" in fine
    await session_events(server, "fine", [("text", {"text": "hi"})], until="bot_response")
    status, log = call(server, "GET", "events?name=bot_response&direction=out")
    assert status == 200 and log["events"][-1]["payload"]["text"] == "Scripted hello."
    _, tokens = call(server, "GET", "events?name=livekit_token&direction=out")
    assert all(e["payload"]["token"].endswith("…") for e in tokens["events"]), "tokens must be cut in the log"
    assert call(server, "POST", "reset")[0] == 200
    assert call(server, "GET", "events")[1]["events"] == []


def test_cli_rejects_bad_misbehaviour_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fake_server", "--misbehave", '{"nope": 1}'], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "unknown misbehaviour setting 'nope'" in result.stderr
