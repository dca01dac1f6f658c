"""TLS without a proxy: the CA-file option's usage errors, the fake server serving HTTPS/WSS,
our client trusting it only through ca_file, and the diagnoses of pytest_estuary.tls."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_proxy import Certificates

from fake_server import FakeEstuaryServer
from pytest_estuary.client import ConfigError, ErrorCode, EstuaryClient, EstuaryError
from pytest_estuary.tls import CaFileError, check_ca_file, diagnose_tls, ssl_context

PASSING = "def test_nothing():\n    pass\n"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates.make(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def https_fake(certificates: Certificates) -> Iterator[FakeEstuaryServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificates.good)
    with FakeEstuaryServer(ssl_context=context) as server:  # no LiveKit: Socket.IO over TLS only
        yield server


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--estuary-ca-file (or ESTUARY_CA_FILE): no such file: '{path}'"),
        ("just text\n", "--estuary-ca-file (or ESTUARY_CA_FILE): '{path}' holds no PEM certificate"),
    ],
    ids=["missing", "no-pem"],
)
def test_a_bad_ca_file_is_a_usage_error_naming_option_and_path(
    pytester: pytest.Pytester, content: str | None, message: str
) -> None:
    path = pytester.path / "ca.pem"
    if content is not None:
        path.write_text(content)
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--estuary-ca-file", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message.format(path=path) in result.stderr.str()


def test_a_socketio_path_must_be_a_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--estuary-socketio-path", "estuary/socket.io")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--estuary-socketio-path (or ESTUARY_SOCKETIO_PATH) must be a path such as*"])


def test_check_ca_file_accepts_a_bundle(certificates: Certificates, tmp_path: Path) -> None:
    assert check_ca_file(certificates.ca) == certificates.ca
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(CaFileError, match="is not a usable PEM bundle"):
        check_ca_file(broken)


@pytest.mark.asyncio
async def test_client_connects_over_https_with_ca_file_only(
    https_fake: FakeEstuaryServer, certificates: Certificates
) -> None:
    assert https_fake.url.startswith("https://127.0.0.1:")
    url, key = https_fake.url, https_fake.api_key
    async with EstuaryClient(url, key, "c", "tls-ok", ca_file=certificates.ca, reconnect=False) as client:
        await client.send_text("over TLS?")
        reply = await client.wait_for("bot_response", predicate=lambda r: r.is_final, timeout=10)
        assert reply.text
    untrusting = EstuaryClient(url, key, "c", "tls-no-ca", reconnect=False, connect_timeout=5)
    with pytest.raises(EstuaryError) as failure:
        await untrusting.connect()
    assert failure.value.code is ErrorCode.CONNECTION_FAILED
    assert "is from an unknown authority" in str(failure.value) and "pass ca_file=" in str(failure.value)
    await untrusting.disconnect()
    plain_url = url.replace("https://", "http://")
    wrong_scheme = EstuaryClient(plain_url, key, "c", "tls-http", reconnect=False, connect_timeout=5)
    with pytest.raises(EstuaryError) as failure:
        await wrong_scheme.connect()
    assert "is an https (TLS) server, but the URL says http://" in str(failure.value)
    await wrong_scheme.disconnect()


def test_client_names_a_bad_ca_file_or_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        EstuaryClient("https://x.example", "k", "c", "p", ca_file=tmp_path / "none.pem")
    with pytest.raises(ConfigError, match="socketio_path"):
        EstuaryClient("https://x.example", "k", "c", "p", socketio_path="socket.io")


@pytest.mark.asyncio
async def test_diagnosis_names_the_certificate_problem(
    https_fake: FakeEstuaryServer, certificates: Certificates
) -> None:
    port = https_fake.port
    assert await diagnose_tls(f"https://127.0.0.1:{port}", ssl_context(certificates.ca)) is None
    unknown = await diagnose_tls(f"https://127.0.0.1:{port}", ssl_context(), what="the Estuary server")
    assert unknown is not None and "unknown authority" in unknown and "--estuary-ca-file" in unknown


def test_fake_server_cli_serves_tls_and_names_bad_options(certificates: Certificates) -> None:
    cert, key = certificates.good
    lonely = subprocess.run(
        [sys.executable, "-m", "fake_server", "--tls-cert", str(cert)], capture_output=True, text=True, timeout=30
    )
    assert lonely.returncode == 2 and "--tls-cert and --tls-key go together; missing: --tls-key" in lonely.stderr
    swapped = subprocess.run(
        [sys.executable, "-m", "fake_server", "--tls-cert", str(key), "--tls-key", str(cert)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert swapped.returncode == 2 and "argument --tls-cert/--tls-key" in swapped.stderr
    serving = subprocess.Popen(
        [sys.executable, "-m", "fake_server", "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert serving.stdout is not None
        assert json.loads(serving.stdout.readline())["url"].startswith("https://127.0.0.1:")
    finally:
        serving.terminate()
        serving.wait(10)
        assert serving.stdout is not None
        serving.stdout.close()
