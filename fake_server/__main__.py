"""``python -m fake_server`` / ``estuary-fake-server``: run the fake Estuary server until SIGINT/SIGTERM.

Prints one JSON line with ``url``, ``api_key`` and ``control_token`` (for the control API), then
serves. A bad option ends it at once: one line naming the option and what was expected, exit 2.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import signal
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from fake_server.misbehaviour import Misbehaviour, MisbehaviourError
from fake_server.server import AUTH_DEADLINE, FakeEstuaryServer, FakeServerError
from fake_server.tokens import LiveKitConfig

PROG = "estuary-fake-server"
FULL_COLLECTION_EVERY = 1000  # middle-generation collections (the default is 10)
DESCRIPTION = "Run the fake Estuary server (Socket.IO /sdk, LiveKit tokens, a bot) until SIGINT/SIGTERM."
EPILOG = """\
On start it prints one JSON line: {"url", "api_key", "control_token", "livekit"}.

LiveKit comes from the --livekit-* options or from the environment variables
  LIVEKIT_URL         ws://, wss://, http:// or https:// URL of the livekit-server
  LIVEKIT_API_KEY     its API key
  LIVEKIT_API_SECRET  its API secret (prefer the variable: a command line is visible in ps)
Without them LiveKit is off: livekit_token is never answered.

The control API (JSON, under /control/) needs the header "Authorization: Bearer <control_token>".
"""


class OneLineParser(argparse.ArgumentParser):
    """Errors are one line, naming the option and what was expected; exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port), got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port), got {text!r}")
    return value


def non_empty(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty string")
        return text

    return check


def origin(text: str) -> str:
    if text == "*":
        return text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(f"expected an origin such as https://app.example:8443 or *, got {text!r}")
    return text


def json_of(kind: type, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected {what}, got invalid JSON ({exc})") from None
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"expected {what}, got {type(value).__name__}")
        return value

    return parse


def directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a directory of .wav files with .txt transcripts, got {text!r}")
    return path


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", type=non_empty("a host name or address"), help="default: 127.0.0.1")
    add("--port", type=port_number, default=0, help="0 picks a free port (default)")
    add("--api-key", action="append", dest="api_keys", type=non_empty("an API key"),
        help="an accepted Estuary API key (repeatable; default: one random key, printed)")  # fmt: skip
    add("--control-token", type=non_empty("a token"), help="token for the control API (default: random, printed)")
    add("--livekit-url", default=os.environ.get("LIVEKIT_URL"), help="default: $LIVEKIT_URL")
    add("--livekit-api-key", default=os.environ.get("LIVEKIT_API_KEY"), help="default: $LIVEKIT_API_KEY")
    add("--livekit-api-secret", default=os.environ.get("LIVEKIT_API_SECRET"), help="default: $LIVEKIT_API_SECRET")
    add("--token-ttl", type=positive_seconds, default=600.0, metavar="SECONDS",
        help="lifetime of minted LiveKit tokens (default: 600)")  # fmt: skip
    add("--session-idle-timeout", type=positive_seconds, metavar="SECONDS",
        help="send session_timeout after this much inactivity (default: never)")  # fmt: skip
    add("--voice-idle-timeout", type=positive_seconds, metavar="SECONDS",
        help="send voice_timeout after this much voice inactivity (default: never)")  # fmt: skip
    add("--auth-deadline", type=positive_seconds, default=AUTH_DEADLINE, metavar="SECONDS",
        help=f"close sockets that have not authenticated by then (default: {AUTH_DEADLINE:g})")  # fmt: skip
    add("--allowed-origin", action="append", dest="allowed_origins", type=origin, metavar="ORIGIN",
        help="a browser origin accepted besides loopback ones (repeatable; * accepts any)")  # fmt: skip
    add("--utterances", action="append", type=directory, metavar="DIR",
        help="known recordings (NAME.wav + NAME.txt) the STT recognises, besides the suite's (repeatable)")  # fmt: skip
    add("--no-bot-warmup", dest="bot_warmup", action="store_false",
        help="no standby bot; the bot joins on livekit_join, not ahead of it (LK-11)")  # fmt: skip
    add("--transcripts", type=json_of(list, "a JSON list of non-empty strings"), default=[], metavar="JSON",
        help="scripted transcripts, used in order before recognition")  # fmt: skip
    add("--replies", type=json_of(list, "a JSON list of non-empty strings"), default=[], metavar="JSON",
        help="scripted replies, used in order")  # fmt: skip
    add("--misbehave", type=json_of(dict, "a JSON object"), default={}, metavar="JSON",
        help=f"server-wide misbehaviour; keys: {', '.join(Misbehaviour.names())}")  # fmt: skip
    add("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS/WSS with this certificate (chain) file")
    add("--tls-key", type=Path, metavar="PEM", help="the private key of --tls-cert")
    return parser


def tls_context(parser: OneLineParser, cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        parser.error(f"--tls-cert and --tls-key go together; missing: {'--tls-cert' if cert is None else '--tls-key'}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        parser.error(f"argument --tls-cert/--tls-key: no such file: {exc.filename!r}")
    except (ssl.SSLError, OSError) as exc:
        pair = f"{str(cert)!r} + {str(key)!r}"
        parser.error(f"argument --tls-cert/--tls-key: {pair}: not a PEM certificate and its key ({exc})")
    return context


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("transcripts", "replies"):
        values = getattr(args, name)
        if not all(isinstance(v, str) and v.strip() for v in values):
            parser.error(f"argument --{name}: expected a JSON list of non-empty strings, got {json.dumps(values)[:80]}")
    try:
        Misbehaviour().updated(args.misbehave)
    except MisbehaviourError as exc:
        parser.error(f"argument --misbehave: {exc}")
    given = [args.livekit_url, args.livekit_api_key, args.livekit_api_secret]
    if any(given) and not all(given):
        parser.error(
            "--livekit-url, --livekit-api-key and --livekit-api-secret (or LIVEKIT_URL, LIVEKIT_API_KEY and "
            "LIVEKIT_API_SECRET) go together; missing: "
            + ", ".join(n for n, v in zip(("url", "api key", "api secret"), given, strict=True) if not v)
        )
    args.ssl_context = tls_context(parser, args.tls_cert, args.tls_key)
    args.livekit = None
    if all(given):
        try:
            args.livekit = LiveKitConfig(args.livekit_url, args.livekit_api_key, args.livekit_api_secret)
        except ValueError as exc:
            parser.error(f"argument --livekit-url: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    livekit: LiveKitConfig | None = args.livekit
    server = FakeEstuaryServer(
        livekit=livekit,
        api_keys=args.api_keys,
        host=args.host,
        port=args.port,
        token_ttl=args.token_ttl,
        session_idle_timeout=args.session_idle_timeout,
        voice_idle_timeout=args.voice_idle_timeout,
        control_token=args.control_token,
        bot_warmup=args.bot_warmup,
        auth_deadline=args.auth_deadline,
        allowed_origins=args.allowed_origins,
        utterances=args.utterances or (),
        reclaim_memory=True,
        ssl_context=args.ssl_context,
    )
    try:
        server.start()
    except FakeServerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    # What exists now lives as long as the process: no full collection need scan it again, so the
    # memory reclaims after a burst (fake_server.memory) cost milliseconds, not tens of them.
    gc.freeze()
    # Automatic full collections are left to the reclaimer, which runs them once a burst is over:
    # in the middle of one (thousands of sockets, tasks and queued frames alive) each stopped the
    # event loop for 20-55 ms, every second or so, for every client.
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    if args.misbehave:
        server.misbehave(**args.misbehave)
    server.script(transcripts=args.transcripts, replies=args.replies)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    info = {
        "url": server.url,
        "api_key": server.api_key,
        "control_token": server.control_token,
        "livekit": livekit.ws_url if livekit else None,
    }
    print(json.dumps(info), flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
