"""Issue 19's proof: live runs against staging as it really is. nginx terminates TLS (a private CA,
certificates from trustme) in front of a standalone fake and of livekit-server's signalling (wss;
media stays UDP); the suite runs as users run it, `estuary-conformance --estuary-live`, in
subprocesses. Each TLS failure is made for real and ends the run with one ERROR in words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from live_runs import SuiteRun, run_suite
from standalone_fakes import StandaloneFakes
from tls_proxy import Certificates, Nginx, SilentListener

from pytest_estuary.livekit_server import LiveKitCredentials

FAIL_FAST_BOUND = 15.0  # design.md: one ERROR with its diagnosis in ≤ 15 s
MOUNT = "/estuary/socket.io/"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_voice_app.py"
INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"


@dataclass
class Staging:
    certificates: Certificates
    nginx: Nginx
    fake: dict[str, Any]  # behind nginx; hands out wss:// LiveKit URLs (nginx too)
    plain: dict[str, Any]  # the same fake without TLS anywhere, for the plain run
    silent: SilentListener
    directory: Path

    def live(self, url: str, *extra: str, ca: bool = True) -> tuple[str, ...]:
        trust = ("--estuary-ca-file", str(self.certificates.ca)) if ca else ()
        return ("--estuary-live", "--estuary-url", url, *trust, *extra)

    @property
    def env(self) -> dict[str, str]:
        return {"ESTUARY_API_KEY": self.fake["api_key"]}


@pytest.fixture(scope="module")
def staging(livekit_server: LiveKitCredentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staging]:
    base = tmp_path_factory.mktemp("staging")
    certificates = Certificates.make(base / "certs")
    livekit_port = urlsplit(livekit_server.url).port
    assert livekit_port is not None
    nginx = Nginx(base / "nginx", certificates, livekit_port)
    behind = LiveKitCredentials(nginx.url("livekit", "wss"), livekit_server.api_key, livekit_server.api_secret)
    fakes, plain_fakes = StandaloneFakes(behind), StandaloneFakes(livekit_server)
    silent = SilentListener()
    try:
        # The fake's own LiveKit connections (bots, room service) go through nginx as well: its
        # process trusts the staging CA; the suite runs get it only from --estuary-ca-file.
        saved = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = str(certificates.ca)
        try:
            fake = fakes.start()
        finally:
            os.environ.pop("SSL_CERT_FILE") if saved is None else os.environ.__setitem__("SSL_CERT_FILE", saved)
        plain = plain_fakes.start()
        nginx.start(urlsplit(fake["url"]).port or 0)
        yield Staging(certificates, nginx, fake, plain, silent, base)
    finally:
        nginx.stop()
        fakes.stop_all()
        plain_fakes.stop_all()
        silent.close()


def _explain(run: SuiteRun) -> str:
    cases = run.cases() if run.report else []
    lines = [f"{c['id']} {c['verdict']}: {(c['reason'] or '')[:300]}" for c in cases if c["verdict"] != "PASS"]
    return f"{run.seconds:.0f} s, exit {run.code}\n" + "\n".join(lines) + "\n" + run.output[-2500:]


def test_whole_live_suite_through_nginx_at_a_mount_path_gives_the_plain_verdicts(
    staging: Staging, tmp_path: Path
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "tls").mkdir()
    plain = run_suite(
        tmp_path / "plain", "--estuary-live", "--estuary-url", staging.plain["url"],
        env={"ESTUARY_API_KEY": staging.plain["api_key"]}, name="plain",
    )  # fmt: skip
    behind = run_suite(
        tmp_path / "tls", *staging.live(staging.nginx.url("tls"), "--estuary-socketio-path", MOUNT),
        env=staging.env, name="tls",
    )  # fmt: skip
    print(f"plain {plain.seconds:.1f} s, through nginx (TLS, wss, {MOUNT}) {behind.seconds:.1f} s")
    assert behind.report is not None and behind.report["summary"]["gate"] == "pass", _explain(behind)
    assert behind.code == 0, _explain(behind)
    assert plain.report is not None and plain.report["summary"]["gate"] == "pass", _explain(plain)
    assert behind.verdicts() == plain.verdicts()
    assert "offered" in (behind.report["run"]["preflight"]["livekit"] or "")
    access = (staging.nginx.prefix / "access.log").read_text()
    assert f"GET {MOUNT}?" in access, "the suite's Socket.IO went through the mount path"
    assert "GET /rtc" in access, "LiveKit signalling went through nginx (wss)"
