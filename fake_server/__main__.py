"""``python -m fake_server``: run the fake Estuary server until SIGINT/SIGTERM.

Prints one JSON line with ``url``, ``api_key`` and ``control_token`` (for the control API),
then serves. LiveKit comes from ``--livekit-*`` options or ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/
``LIVEKIT_API_SECRET``; without them LiveKit is off (``livekit_token`` is never answered).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from fake_server.misbehaviour import Misbehaviour, MisbehaviourError
from fake_server.server import FakeEstuaryServer, FakeServerError
from fake_server.tokens import LiveKitConfig


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fake_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--api-key", action="append", dest="api_keys", help="accepted Estuary API key (repeatable)")
    parser.add_argument("--control-token", help="token for the control API (default: random)")
    parser.add_argument("--livekit-url", default=os.environ.get("LIVEKIT_URL"))
    parser.add_argument("--livekit-api-key", default=os.environ.get("LIVEKIT_API_KEY"))
    parser.add_argument("--livekit-api-secret", default=os.environ.get("LIVEKIT_API_SECRET"))
    parser.add_argument("--token-ttl", type=float, default=600.0)
    parser.add_argument("--session-idle-timeout", type=float)
    parser.add_argument("--voice-idle-timeout", type=float)
    parser.add_argument(
        "--no-bot-warmup",
        dest="bot_warmup",
        action="store_false",
        help="no standby bot; the bot joins on livekit_join, not ahead of it (LK-11)",
    )
    parser.add_argument("--transcripts", default="[]", metavar="JSON", help="scripted transcripts, a JSON list")
    parser.add_argument("--replies", default="[]", metavar="JSON", help="scripted replies, a JSON list")
    parser.add_argument(
        "--misbehave",
        default="{}",
        metavar="JSON",
        help=f"server-wide misbehaviour as a JSON object; keys: {', '.join(Misbehaviour.names())}",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    livekit = None
    given = [args.livekit_url, args.livekit_api_key, args.livekit_api_secret]
    if any(given):
        if not all(given):
            print("fake_server: --livekit-url, --livekit-api-key and --livekit-api-secret go together", file=sys.stderr)
            return 2
        livekit = LiveKitConfig(args.livekit_url, args.livekit_api_key, args.livekit_api_secret)
    try:
        settings = json.loads(args.misbehave)
        if not isinstance(settings, dict):
            raise ValueError("--misbehave must be a JSON object")
        Misbehaviour().updated(settings)
    except (ValueError, MisbehaviourError) as exc:
        print(f"fake_server: --misbehave: {exc}", file=sys.stderr)
        return 2
    try:
        transcripts, replies = json.loads(args.transcripts), json.loads(args.replies)
        if not all(isinstance(x, list) and all(isinstance(v, str) and v for v in x) for x in (transcripts, replies)):
            raise ValueError("expected a JSON list of non-empty strings")
    except ValueError as exc:
        print(f"fake_server: --transcripts/--replies: {exc}", file=sys.stderr)
        return 2
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
    )
    try:
        server.start()
    except FakeServerError as exc:
        print(f"fake_server: {exc}", file=sys.stderr)
        return 1
    if settings:
        server.misbehave(**settings)
    server.script(transcripts=transcripts, replies=replies)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        json.dumps(
            {
                "url": server.url,
                "api_key": server.api_key,
                "control_token": server.control_token,
                "livekit": livekit.ws_url if livekit else None,
            }
        ),
        flush=True,
    )
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
