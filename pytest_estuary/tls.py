"""TLS in one place: the SSL context every connection uses, and what a failed handshake means.

Trust is the system store (plus ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as OpenSSL reads them) and,
optionally, a PEM bundle given with ``--estuary-ca-file``. livekit.rtc is a native (Rust, rustls)
library that takes no SSL context: it reads its roots from ``SSL_CERT_FILE`` (rustls-native-certs,
which then ignores the system store), so :func:`trust_in_process` points that variable at a bundle
of the system roots plus the extra ones.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CA_FILE_OPTION",
    "HANDSHAKE_TIMEOUT",
    "CaFileError",
    "TlsEndpoint",
    "check_ca_file",
    "diagnose_tls",
    "diagnose_url",
    "speaks_tls",
    "ssl_context",
    "trust_in_process",
    "verify_once",
]

CA_FILE_OPTION = "--estuary-ca-file"
HANDSHAKE_TIMEOUT = 5.0
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_NO_CHECK_TIME = 0x200000  # OpenSSL's X509_V_FLAG_NO_CHECK_TIME: read an expired cert's dates
# verify codes of OpenSSL (x509_vfy.h) that name the certificate's authority as the problem
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}
_NOT_YET_VALID, _EXPIRED, _HOSTNAME_MISMATCH = 9, 10, 62


class CaFileError(ValueError):
    """A CA file that cannot be used; the message names the option and the path."""


def check_ca_file(path: str | os.PathLike[str], option: str = CA_FILE_OPTION) -> Path:
    """The path, if it is a readable file holding at least one PEM certificate."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CaFileError(f"{option}: no such file: {str(file)!r}") from None
    except OSError as exc:
        raise CaFileError(f"{option}: cannot read {str(file)!r}: {exc.strerror or exc}") from None
    if _PEM_CERT not in data:
        raise CaFileError(f"{option}: {str(file)!r} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(file))
    except ssl.SSLError as exc:
        raise CaFileError(f"{option}: {str(file)!r} is not a usable PEM bundle: {exc.reason or exc}") from None
    return file


def ssl_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A verifying client context: system roots (and SSL_CERT_FILE) plus ``ca_file``'s."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(check_ca_file(ca_file)))
    return context


_bundles: dict[tuple[str, str | None], str] = {}


def trust_in_process(ca_file: str | os.PathLike[str] | None) -> None:
    """Make livekit.rtc (and every default context of this process) trust ``ca_file`` too.

    Writes system roots + the current ``SSL_CERT_FILE`` + ``ca_file`` into one temporary bundle
    and sets ``SSL_CERT_FILE`` to it; child processes inherit it. Idempotent."""
    if ca_file is None:
        return
    extra = str(check_ca_file(ca_file).resolve())
    current = os.environ.get("SSL_CERT_FILE")
    if current in _bundles.values():
        return
    key = (extra, current)
    if key not in _bundles:
        parts = [Path(p).read_bytes() for p in _system_bundles(current)]
        parts.append(Path(extra).read_bytes())
        handle, name = tempfile.mkstemp(prefix="estuary-ca-", suffix=".pem")
        with os.fdopen(handle, "wb") as out:
            out.write(b"\n".join(parts) + b"\n")
        _bundles[key] = name
    os.environ["SSL_CERT_FILE"] = _bundles[key]


def _system_bundles(current: str | None) -> list[str]:
    """What OpenSSL trusts now: SSL_CERT_FILE when set (it replaces the system file), else the system file."""
    paths = ssl.get_default_verify_paths()
    found = [p for p in (current, paths.cafile, paths.openssl_cafile) if p and os.path.isfile(p)]
    return found[:1]


@atexit.register
def _remove_bundles() -> None:
    for name in _bundles.values():
        with contextlib.suppress(OSError):
            os.unlink(name)


@dataclass(frozen=True)
class TlsEndpoint:
    """Host and port of a URL, and whether the URL asks for TLS."""

    host: str
    port: int
    secure: bool

    @classmethod
    def of(cls, url: str) -> TlsEndpoint:
        parts = urlsplit(url)
        secure = parts.scheme in ("https", "wss")
        return cls(parts.hostname or "localhost", parts.port or (443 if secure else 80), secure)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


async def _handshake(
    where: TlsEndpoint, context: ssl.SSLContext, timeout: float, connected: asyncio.StreamWriter | None = None
) -> dict[str, Any]:
    """One TLS handshake (over ``connected``, e.g. a proxy tunnel, or a new TCP connection);
    returns the peer certificate (decoded when verified)."""
    deadline = time.monotonic() + timeout
    if connected is None:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(where.host, where.port), timeout)
    else:
        writer = connected
    try:
        await asyncio.wait_for(
            writer.start_tls(context, server_hostname=where.host), max(0.1, deadline - time.monotonic())
        )
        cert = writer.get_extra_info("peercert") or {}
        return dict(cert)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def _names(cert: dict[str, Any]) -> str:
    names = [str(value) for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    if not names:
        for rdn in cert.get("subject", ()):
            names += [str(value) for key, value in rdn if key == "commonName"]
    return ", ".join(names) or "no names"


async def diagnose_tls(
    url: str,
    context: ssl.SSLContext,
    *,
    timeout: float = HANDSHAKE_TIMEOUT,
    what: str = "the server",
    tunnel: asyncio.StreamWriter | None = None,
    remedy: str = CA_FILE_OPTION,
) -> str | None:
    """None when a verified TLS handshake with ``url``'s host completes within ``timeout``, else
    one sentence saying what is wrong with its TLS (and what to do about it)."""
    where = TlsEndpoint.of(url)
    try:
        await _handshake(where, context, timeout, tunnel)
        return None
    except TimeoutError:
        return (
            f"TLS handshake with {what} at {where} did not complete within {timeout:g} s "
            "(TCP was accepted, the ServerHello never came)"
        )
    except ssl.SSLCertVerificationError as exc:
        return await _certificate_problem(where, context, exc, what, timeout, remedy)
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).lower().replace("_", " ")
        if "wrong version" in reason or "record layer" in reason or "packet length" in reason or "http" in reason:
            return (
                f"{what} at {where} speaks plain HTTP, not TLS, but the URL says "
                f"{'https' if url.startswith('http') else 'wss'}:// (use http:// / ws://, or the server's TLS port)"
            )
        return f"TLS handshake with {what} at {where} failed: {exc.reason or exc}"
    except (ConnectionResetError, asyncio.IncompleteReadError, EOFError) as exc:
        return f"{what} at {where} closed the connection during the TLS handshake ({type(exc).__name__})"
    except OSError as exc:
        return f"cannot reach {what} at {where}: {exc.strerror or exc}"


async def _certificate_problem(
    where: TlsEndpoint,
    context: ssl.SSLContext,
    exc: ssl.SSLCertVerificationError,
    what: str,
    timeout: float,
    remedy: str,
) -> str:
    code = exc.verify_code
    if code in _UNKNOWN_AUTHORITY:
        return (
            f"the TLS certificate of {what} at {where} is from an unknown authority ({exc.verify_message}); "
            f"pass {remedy} with the PEM bundle of the CA that signed it"
        )
    relaxed = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    relaxed.check_hostname = False
    relaxed.verify_mode = ssl.CERT_REQUIRED
    relaxed.verify_flags = context.verify_flags | _NO_CHECK_TIME
    for der in context.get_ca_certs(binary_form=True):
        relaxed.load_verify_locations(cadata=der)
    try:
        cert = await _handshake(where, relaxed, timeout)
    except (ssl.SSLError, OSError, TimeoutError):
        cert = {}
    if code == _HOSTNAME_MISMATCH:
        return (
            f"the TLS certificate of {what} at {where} is not valid for {where.host!r}: "
            f"it names {_names(cert) if cert else 'other hosts'} (use one of those names in the URL)"
        )
    if code == _EXPIRED:
        return f"the TLS certificate of {what} at {where} expired on {cert.get('notAfter', '(date unknown)')}"
    if code == _NOT_YET_VALID:
        return f"the TLS certificate of {what} at {where} is not valid before {cert.get('notBefore', '(date unknown)')}"
    return f"the TLS certificate of {what} at {where} was refused: {exc.verify_message}"


async def speaks_tls(where: TlsEndpoint, timeout: float = 2.0) -> bool:
    """Does ``where`` complete a TLS handshake (any certificate)? For an http:// URL that fails."""
    anything = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anything.check_hostname = False
    anything.verify_mode = ssl.CERT_NONE
    try:
        await _handshake(where, anything, timeout)
    except (ssl.SSLError, OSError, TimeoutError, EOFError):
        return False
    return True


async def diagnose_url(
    url: str, context: ssl.SSLContext, *, what: str, timeout: float = HANDSHAKE_TIMEOUT, remedy: str = CA_FILE_OPTION
) -> str | None:
    """:func:`diagnose_tls` for an https/wss URL; for an http/ws URL, whether the port speaks TLS."""
    where = TlsEndpoint.of(url)
    if where.secure:
        return await diagnose_tls(url, context, timeout=min(timeout, HANDSHAKE_TIMEOUT), what=what, remedy=remedy)
    if await speaks_tls(where, min(timeout, 2.0)):
        secure = "https" if url.startswith("http") else "wss"
        return f"{what} at {where} is an {secure} (TLS) server, but the URL says {url.split(':', 1)[0]}:// (use {secure}://)"
    return None


_verified: dict[tuple[str, int, int], ssl.SSLContext] = {}  # the context kept: its id stays unique


async def verify_once(
    url: str, context: ssl.SSLContext, *, what: str, timeout: float = HANDSHAKE_TIMEOUT, remedy: str = CA_FILE_OPTION
) -> str | None:
    """:func:`diagnose_tls`, remembered per endpoint and context once it passed (a room join
    pays for one handshake per process, not one per join)."""
    where = TlsEndpoint.of(url)
    key = (where.host, where.port, id(context))
    from pytest_estuary.proxies import proxy_for

    if key in _verified or proxy_for(url) is not None:  # through a proxy, a direct probe proves nothing
        return None
    problem = await diagnose_tls(url, context, timeout=min(timeout, HANDSHAKE_TIMEOUT), what=what, remedy=remedy)
    if problem is None:
        _verified[key] = context
    return problem
