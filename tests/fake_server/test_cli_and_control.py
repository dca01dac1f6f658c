"""The CLI validates every option (one line naming it, exit 2) and documents its environment; the
control API wants ``Authorization: Bearer <token>`` (any case) and answers every error in JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fake_server import FakeEstuaryServer
from fake_server.__main__ import main

BOUND = 10.0


@pytest.mark.parametrize(
    ("argv", "named", "expected"),
    [
        (["--token-ttl", "-1"], "--token-ttl", "a positive number of seconds"),
        (["--session-idle-timeout", "0"], "--session-idle-timeout", "a positive number of seconds"),
        (["--voice-idle-timeout", "nan"], "--voice-idle-timeout", "a positive number of seconds"),
        (["--auth-deadline", "soon"], "--auth-deadline", "a positive number of seconds"),
        (["--port", "70000"], "--port", "a port number 0-65535"),
        (["--host", ""], "--host", "a host name or address"),
        (["--api-key", " "], "--api-key", "an API key"),
        (["--control-token", ""], "--control-token", "a token"),
        (["--allowed-origin", "ftp://x"], "--allowed-origin", "an origin such as"),
        (["--utterances", "/no/such/dir"], "--utterances", "a directory of .wav files"),
        (["--transcripts", "[1]"], "--transcripts", "a JSON list of non-empty strings"),
        (["--replies", "{"], "--replies", "a JSON list of non-empty strings"),
        (["--misbehave", "[]"], "--misbehave", "a JSON object"),
        (["--misbehave", '{"nope": 1}'], "--misbehave", "unknown misbehaviour setting 'nope'"),
        (["--livekit-url", "ws://127.0.0.1:7880"], "--livekit-api-key", "go together"),
        (["--livekit-url", "ftp://x", "--livekit-api-key", "k", "--livekit-api-secret", "s"], "--livekit-url", "URL"),
        (["--no-such-option"], "--no-such-option", "unrecognized"),
    ],
)
def test_every_bad_option_is_one_line_and_exit_2(
    argv: list[str], named: str, expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert named in err and expected in err, err


def test_the_installed_command_ends_a_bad_option_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fake_server", "--token-ttl", "-1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "--token-ttl" in done.stderr


def test_help_is_plain_text_and_names_the_livekit_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "``" not in out and "`" not in out
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "--auth-deadline", "--utterances"):
        assert name in out


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEstuaryServer]:
    with FakeEstuaryServer(suite_utterances=False) as server:
        yield server


def call(fake: FakeEstuaryServer, method: str, path: str, authorization: str | None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"{fake.url}{path}", method=method, data=b"{}" if method == "POST" else None)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=BOUND) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(fake: FakeEstuaryServer, scheme: str) -> None:
    status, body, _ = call(fake, "GET", "/control/state", f"{scheme} {fake.control_token}")
    assert status == 200 and body["sessions"] == []


@pytest.mark.parametrize(
    "authorization", [None, "", "{token}", "Basic {token}", "Bearer", "Bearer wrong", "Token {token}"]
)
def test_no_bare_token_nor_another_scheme(fake: FakeEstuaryServer, authorization: str | None) -> None:
    header = authorization.format(token=fake.control_token) if authorization is not None else None
    status, body, headers = call(fake, "GET", "/control/state", header)
    assert status == 401 and "Authorization: Bearer" in body["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/control/no_such_route", 404),
        ("GET", "/nothing/here", 404),
        ("GET", "/control/reset", 405),
        ("POST", "/control/state", 405),
        ("DELETE", "/control/events", 405),
    ],
)
def test_every_error_is_json(fake: FakeEstuaryServer, method: str, path: str, status: int) -> None:
    got, body, headers = call(fake, method, path, f"Bearer {fake.control_token}")
    assert got == status and isinstance(body.get("error"), str) and body["error"], body
    assert headers["Content-Type"].startswith("application/json")
    if status == 405:
        assert "allowed" in body["error"] and headers["Allow"]
