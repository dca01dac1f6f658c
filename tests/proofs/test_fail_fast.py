"""Issue 10's proof: a target that cannot be tested ends the live run at once with one ERROR and
its diagnosis at the top of the Markdown report; an empty selection fails the gate."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from live_runs import SuiteRun, run_suite
from standalone_fakes import StandaloneFakes

FAIL_FAST_BOUND = 15.0  # design.md: one ERROR with its diagnosis in ≤ 15 s


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NotSocketIO(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"not here")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def plain_http_server() -> Iterator[str]:
    """An HTTP server on loopback that is not a Socket.IO server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotSocketIO)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _assert_one_error(run: SuiteRun, tmp: Path, diagnosis: str) -> None:
    assert run.code != 0, run.output[-2000:]
    assert run.seconds <= FAIL_FAST_BOUND, f"{run.seconds:.1f} s:\n{run.output[-2000:]}"
    assert run.report is not None, run.output[-2000:]
    assert [c["verdict"] for c in run.report["cases"]] == ["ERROR"]
    assert run.report["summary"]["gate"] == "fail"
    head = "\n".join((tmp / "report.md").read_text().splitlines()[:8])
    assert "**Gate: FAIL**" in head and diagnosis in head, head
    assert diagnosis in run.output


def test_wrong_key_is_one_error_within_15s(standalone_fake: StandaloneFakes, tmp_path: Path) -> None:
    server = standalone_fake()
    run = run_suite(tmp_path, "--estuary-live", "--estuary-url", server["url"], env={"ESTUARY_API_KEY": "wrong-key"})
    _assert_one_error(run, tmp_path, "the API key was refused: auth_error")
    assert "wrong-key" not in (tmp_path / "report.md").read_text()


def test_nothing_listening_is_one_error_within_15s(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    run = run_suite(tmp_path, "--estuary-live", "--estuary-url", url, env={"ESTUARY_API_KEY": "some-key"})
    _assert_one_error(run, tmp_path, "connection refused at 127.0.0.1:")
    assert len(run.output.splitlines()) < 60, "the output stays short"


def test_no_socketio_server_is_one_error_within_15s(plain_http_server: str, tmp_path: Path) -> None:
    run = run_suite(tmp_path, "--estuary-live", "--estuary-url", plain_http_server, env={"ESTUARY_API_KEY": "some-key"})
    _assert_one_error(run, tmp_path, "no Socket.IO server with namespace /sdk at")


def test_empty_selection_fails_the_gate(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "-k", "no_case_is_called_like_this")
    assert run.code != 0
    assert run.report is not None and run.report["summary"]["gate"] == "fail"
    assert run.report["summary"]["executed"] == 0
    assert "no conformance case was executed" in (tmp_path / "report.md").read_text().splitlines()[2]
