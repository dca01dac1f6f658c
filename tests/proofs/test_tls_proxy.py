"""Issue 19's proof: live runs against staging as it really is. nginx terminates TLS (a private CA,
certificates from trustme) in front of a standalone fake and of livekit-server's signalling (wss;
media stays UDP); the suite runs as users run it, `estuary-conformance --estuary-live`, in
subprocesses. Each TLS failure is made for real and ends the run with one ERROR in words."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from live_runs import SuiteRun, explain, run_suite
from standalone_fakes import StandaloneFakes
from tls_proxy import Certificates, Nginx, SilentListener, TinyProxy, free_port

from pytest_estuary.livekit_server import LiveKitCredentials
from pytest_estuary.load.gate import read_final

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
        # nginx is up before the fake: the fake's standby bot joins its room through nginx at once.
        fake_port = free_port()
        nginx.start(fake_port)
        saved = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = str(certificates.ca)
        try:
            fake = fakes.start(None, None, "--port", str(fake_port))
        finally:
            os.environ.pop("SSL_CERT_FILE") if saved is None else os.environ.__setitem__("SSL_CERT_FILE", saved)
        plain = plain_fakes.start()
        yield Staging(certificates, nginx, fake, plain, silent, base)
    finally:
        nginx.stop()
        fakes.stop_all()
        plain_fakes.stop_all()
        silent.close()


def _explain(run: SuiteRun) -> str:
    return f"{explain(run)}\n{run.output[-1500:]}"


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


def test_readme_example_through_nginx_with_estuary_live(staging: Staging, pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_voice_app=EXAMPLE.read_text())
    os.environ["ESTUARY_API_KEY"] = staging.fake["api_key"]
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *staging.live(staging.nginx.url("tls")))
    finally:
        del os.environ["ESTUARY_API_KEY"]
    result.assert_outcomes(passed=2, skipped=1)  # the voice round trip joined the room over wss


def _one_error(run: SuiteRun, tmp: Path, *words: str) -> None:
    assert run.code != 0, run.output[-2000:]
    assert run.report is not None, run.output[-2000:]
    assert [c["verdict"] for c in run.report["cases"]] == ["ERROR"], _explain(run)
    preflight = run.report["run"]["preflight"]
    assert preflight["seconds"] <= FAIL_FAST_BOUND, preflight
    head = "\n".join((tmp / "report.md").read_text().splitlines()[:8])
    assert "**Gate: FAIL**" in head, head
    for word in words:
        assert word in head, f"{word!r} not in the Markdown's first lines:\n{head}"
        assert word in run.output
    assert "Connection error" not in preflight["diagnosis"], preflight


FAILURES = {
    "unknown-authority": ("other_ca", "https", ("from an unknown authority", "pass --estuary-ca-file")),
    "wrong-host": ("wrong_host", "https", ("is not valid for 'localhost'", "it names staging.example.com")),
    "expired": ("expired", "https", ("expired on", "GMT")),
    "plain-http-on-https-url": ("plain", "https", ("speaks plain HTTP, not TLS", "the URL says https://")),
    "https-on-http-url": ("tls", "http", ("is an https (TLS) server, but the URL says http://", "use https://")),
    "handshake-never-completes": (
        "silent",
        "https",
        ("TLS handshake with the Estuary server", "did not complete within"),
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_each_tls_failure_is_one_error_in_words(staging: Staging, tmp_path: Path, failure: str) -> None:
    where, scheme, words = FAILURES[failure]
    url = f"{scheme}://localhost:{staging.silent.port}" if where == "silent" else staging.nginx.url(where, scheme)
    run = run_suite(tmp_path, *staging.live(url), env=staging.env)
    _one_error(run, tmp_path, *words)
    assert staging.fake["api_key"] not in (tmp_path / "report.md").read_text()


def test_livekit_certificate_problem_fails_lk2_and_blocks_on_it_in_words(
    staging: Staging, livekit_server: LiveKitCredentials, tmp_path: Path
) -> None:
    """The Estuary server is fine; the LiveKit URL it hands out has a certificate for another host."""
    wrong = LiveKitCredentials(
        staging.nginx.url("livekit_wrong_host", "wss"), livekit_server.api_key, livekit_server.api_secret
    )
    fakes = StandaloneFakes(wrong)
    try:
        fake = fakes.start()
        run = run_suite(
            tmp_path, *staging.live(fake["url"]), "-k", "test_lk_2_ or test_lk_5_",
            env={"ESTUARY_API_KEY": fake["api_key"]},
        )  # fmt: skip
    finally:
        fakes.stop_all()
    assert run.report is not None, run.output[-2000:]
    words = "the TLS certificate of the LiveKit server at localhost:"
    assert words in run.report["run"]["preflight"]["livekit"]
    by_id = {c["id"]: c for c in run.cases()}
    assert by_id["LK-2"]["verdict"] == "FAIL", _explain(run)
    assert by_id["LK-5"]["verdict"] == "BLOCKED" and by_id["LK-5"]["blocked_by"] == "LK-2", _explain(run)
    for case in (by_id["LK-2"], by_id["LK-5"]):
        assert words in case["reason"] and "it names staging.example.com" in case["reason"], case["reason"]


def test_signalling_goes_through_the_https_proxy_and_no_proxy_is_honoured(staging: Staging, tmp_path: Path) -> None:
    proxy = TinyProxy(tmp_path / "tinyproxy").start()
    try:
        through = run_suite(
            tmp_path, *staging.live(staging.nginx.url("tls")), "-k", "test_conn_1_ or test_conn_2_ or test_conn_4_",
            env={**staging.env, "HTTPS_PROXY": proxy.url, "NO_PROXY": ""},
        )  # fmt: skip
        assert through.code == 0, _explain(through)
        tunnels = proxy.connects()
        assert any(f"localhost:{staging.nginx.ports['tls']}" in line for line in tunnels), tunnels
        before = len(tunnels)
        bypass = run_suite(
            tmp_path, *staging.live(staging.nginx.url("tls")), "-k", "test_conn_1_",
            env={**staging.env, "HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost"}, name="bypass",
        )  # fmt: skip
        assert bypass.code == 0, _explain(bypass)
        assert len(proxy.connects()) == before, "NO_PROXY=localhost: no tunnel through the proxy"
    finally:
        proxy.stop()


def test_a_refusing_proxy_is_a_preflight_diagnosis_naming_it(staging: Staging, tmp_path: Path) -> None:
    proxy = TinyProxy(tmp_path / "tinyproxy", connect_ports=(443,)).start()  # CONNECT to 443 only
    try:
        run = run_suite(
            tmp_path, *staging.live(staging.nginx.url("tls")), env={**staging.env, "HTTPS_PROXY": proxy.url}
        )
    finally:
        proxy.stop()
    _one_error(run, tmp_path, f"the proxy {proxy.url} (from HTTPS_PROXY) refused CONNECT localhost:")


def _estuary_load(staging: Staging, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``estuary-load`` as a user runs it (its module, in a child), the key from the environment."""
    command = [sys.executable, "-m", "pytest_estuary.load.cli", "--out", str(out), *args]
    env = {**os.environ, **staging.env}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=150)


def test_estuary_load_through_nginx_with_the_ca_file_and_mount_path(staging: Staging, tmp_path: Path) -> None:
    """The load users reach a staging-shaped target: TLS from a private CA, Socket.IO at a mount
    path, LiveKit over wss; without the CA file the preflight names the problem before any user."""
    url = staging.nginx.url("tls")
    refused = _estuary_load(staging, tmp_path / "refused", "--estuary-url", url, "--estuary-socketio-path", MOUNT)
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "--estuary-ca-file" in refused.stderr and not (tmp_path / "refused" / "final_stats.json").exists()
    run = _estuary_load(
        staging, tmp_path / "load", "--estuary-url", url, "--estuary-socketio-path", MOUNT,
        "--estuary-ca-file", str(staging.certificates.ca), "--users", "2", "--spawn-rate", "2",
        "--run-time", "10s", "--transport-mix", "text=1,livekit=1",
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-3000:]
    stats, failures = read_final(tmp_path / "load" / "final_stats.json")
    for phase in ("connect", "text_reply", "livekit_token", "room_connect", "livekit_ready"):
        assert stats[phase].requests > stats[phase].failures, (phase, stats.get(phase), failures)
    # The transport is what this proves; the speech phase through nginx missed its transcript in 1 of
    # 3 runs (the media is UDP either way, not proxied): only stt_final may fail here.
    assert all(name == "stt_final" for name, _, _ in failures), failures
    access = (staging.nginx.prefix / "access.log").read_text()
    assert f"GET {MOUNT}?" in access and "GET /rtc" in access
