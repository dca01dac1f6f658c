"""``estuary-load``: Locust's headless runner with the suite's options, the preflight first, then the gate.

    ESTUARY_API_KEY=… estuary-load --estuary-url https://staging.example.com --users 50 --spawn-rate 5 \
        --run-time 2m --transport-mix text=1,livekit=2 --max p99:livekit_ready=5s --out load-report

This process never imports Locust: it runs ``python -m locust`` in a child (so gevent's patches stay
there), then reads the CSV files it wrote. Exit status: 0 gate passed, 1 gate failed, 2 bad input,
3 the target cannot be tested (preflight), 4 Locust itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from pytest_estuary.load.gate import Bound, evaluate, parse_bound, read_final
from pytest_estuary.load.mix import USER_CLASSES, parse_mix
from pytest_estuary.load.summary import markdown, write_summary
from pytest_estuary.preflight import run_preflight
from pytest_estuary.settings import redact_url
from pytest_estuary.tls import CaFileError, check_ca_file

__all__ = ["EXIT_BAD_INPUT", "EXIT_LOCUST", "EXIT_UNTESTABLE", "build_parser", "main"]

EXIT_BAD_INPUT, EXIT_UNTESTABLE, EXIT_LOCUST = 2, 3, 4
STOP_TIMEOUT = "90"  # seconds a user gets to finish its session once the run time is over
_DURATION = re.compile(r"^([0-9]+h)?([0-9]+m)?([0-9]+s?)?$")
HERE = Path(__file__).parent


class BadInput(ValueError):
    """An option with a value that cannot work; the message names it and what was expected."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="estuary-load",
        description="Load conformance on Locust: sessions against an Estuary server, every phase timed, "
        "violations named by requirement ID, a gate. The API key comes from ESTUARY_API_KEY.",
    )
    add = parser.add_argument
    add("--estuary-url", default=os.environ.get("ESTUARY_URL"), help="the server (default $ESTUARY_URL)")
    add("--estuary-character-id", default=os.environ.get("ESTUARY_CHARACTER_ID") or "pytest-character")
    add(
        "--estuary-player-id",
        default=os.environ.get("ESTUARY_PLAYER_ID") or "load",
        help="player id prefix; each session adds its own suffix",
    )
    add("--estuary-timeout", default="10", help="seconds for a step the protocol does not bound (default 10)")
    add(
        "--estuary-ca-file",
        default=os.environ.get("ESTUARY_CA_FILE"),
        help="PEM bundle trusted besides the system store, for Socket.IO and LiveKit (default $ESTUARY_CA_FILE)",
    )
    add(
        "--estuary-socketio-path",
        default=os.environ.get("ESTUARY_SOCKETIO_PATH") or "/socket.io/",
        help="where the server mounts Socket.IO, e.g. /estuary/socket.io/ behind a gateway (default /socket.io/)",
    )
    add("--users", "-u", default="10", help="concurrent sessions (Locust users; default 10)")
    add("--spawn-rate", "-r", default="2", help="users started per second (default 2)")
    add("--run-time", "-t", default="60s", help="how long to run, e.g. 90s, 5m, 1h30m (default 60s)")
    add(
        "--transport-mix",
        default="text=1,livekit=1",
        help=f"users by kind and weight, e.g. text=1,livekit=2,websocket=1 (kinds: {', '.join(USER_CLASSES)})",
    )
    add(
        "--max",
        action="append",
        default=[],
        metavar="PCT:PHASE=BOUND",
        help="a bound on a phase's percentile, e.g. p99:livekit_ready=5s (repeatable)",
    )
    add("--steps", help="a step load instead of --users: sessions per step, e.g. 2,4,8,16 (finds the knee)")
    add("--step-time", default="30s", help="how long each step lasts (default 30s)")
    add("--out", default="estuary-load", help="directory for the CSV, HTML, summary and gate files")
    add("--recordings", help="directory of NAME.wav + NAME.txt the voice users say (default: the suite's)")
    add("--master", action="store_true", help="run as Locust master (users run on --worker processes)")
    add("--expect-workers", default="1", help="with --master: workers to wait for before starting")
    add("--master-bind-port", default="5557", help="with --master: the port workers connect to")
    add("--worker", action="store_true", help="run as a Locust worker of --master-host")
    add("--master-host", default="127.0.0.1", help="with --worker: the master's address")
    add("--master-port", default="5557", help="with --worker: the master's port")
    return parser


def _positive(option: str, text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if value <= 0:
        noun = "a whole number" if kind is int else "a number"
        raise BadInput(f"{option}: expected {noun} above 0, got {text!r}")
    return value


def _duration(option: str, text: str) -> float:
    found = _DURATION.match(text)
    if not text or not found or not any(found.groups()):
        raise BadInput(f"{option}: expected a duration like 90s, 5m or 1h30m, got {text!r}")
    h, m, s = (int(g.rstrip("hms")) if g else 0 for g in found.groups())
    seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise BadInput(f"{option}: the duration must be above 0, got {text!r}")
    return float(seconds)


def check(args: argparse.Namespace) -> tuple[list[Bound], str, list[int]]:
    """Validate every option before anything starts; returns the bounds, the mix and the steps."""
    if args.master and args.worker:
        raise BadInput("--master and --worker: choose one")
    url = args.estuary_url
    if not url or not re.match(r"^(https?|wss?)://[^/\s]+", url):
        raise BadInput(f"--estuary-url: expected an http(s):// or ws(s):// URL with a host, got {url!r}")
    if not os.environ.get("ESTUARY_API_KEY", "").strip():
        raise BadInput(
            "ESTUARY_API_KEY: the API key must be set in the environment (it is never taken on the "
            "command line, where ps would show it)"
        )
    _positive("--estuary-timeout", args.estuary_timeout, float)
    if args.estuary_ca_file:
        try:
            check_ca_file(args.estuary_ca_file, "--estuary-ca-file (or ESTUARY_CA_FILE)")
        except CaFileError as exc:
            raise BadInput(str(exc)) from None
    if not args.estuary_socketio_path.startswith("/") or "//" in args.estuary_socketio_path:
        raise BadInput(
            f"--estuary-socketio-path: expected a path such as /estuary/socket.io/, got {args.estuary_socketio_path!r}"
        )
    _positive("--users", args.users, int)
    _positive("--spawn-rate", args.spawn_rate, float)
    _duration("--run-time", args.run_time)
    _duration("--step-time", args.step_time)
    _positive("--expect-workers", args.expect_workers, int)
    try:
        mix = parse_mix(args.transport_mix)
        bounds = [parse_bound(spec) for spec in args.max]
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    steps: list[int] = []
    if args.steps:
        steps = [int(_positive("--steps", part.strip(), int)) for part in args.steps.split(",")]
        if steps != sorted(set(steps)):
            raise BadInput(f"--steps: expected increasing session counts like 2,4,8, got {args.steps!r}")
    if args.recordings and not Path(args.recordings).is_dir():
        raise BadInput(f"--recordings: {args.recordings!r} is not a directory")
    return bounds, ",".join(f"{k}={w}" for k, w in mix.items()), steps


def locust_command(args: argparse.Namespace, mix: str, steps: list[int], out: Path) -> list[str]:
    files = str(HERE / "locustfile.py") + (f",{HERE / 'step_shape.py'}" if steps else "")
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--headless",
        "--stop-timeout",
        STOP_TIMEOUT,
        "--loglevel",
        "WARNING",
    ]
    if args.worker:
        return [*command, "--worker", "--master-host", args.master_host, "--master-port", args.master_port]
    classes = [USER_CLASSES[kind.split("=")[0]] for kind in mix.split(",")]
    command += ["--csv", str(out / "locust"), "--html", str(out / "report.html"), "--only-summary"]
    if not steps:
        command += ["-u", args.users, "-r", args.spawn_rate, "-t", args.run_time]
    if args.master:
        command += ["--master", "--expect-workers", args.expect_workers, "--master-bind-port", args.master_bind_port]
    return [*command, *classes]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        bounds, mix, steps = check(args)
    except BadInput as exc:
        print(f"estuary-load: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    api_key = os.environ["ESTUARY_API_KEY"]
    shown = redact_url(args.estuary_url)
    preflight = run_preflight(
        args.estuary_url,
        api_key,
        args.estuary_character_id,
        f"{args.estuary_player_id}-{uuid.uuid4().hex[:4]}",
        float(args.estuary_timeout),
        ca_file=args.estuary_ca_file,
        socketio_path=args.estuary_socketio_path,
    )
    if not preflight.ok:
        print(f"estuary-load: the target cannot be tested: {preflight.diagnosis}", file=sys.stderr)
        if not args.worker:
            (out / "gate.json").write_text(json.dumps({"ok": False, "preflight": preflight.as_dict()}, indent=2))
            write_summary(
                f"## Estuary load: {shown}\n\n**Gate: FAILED**\n\nPreflight: {preflight.diagnosis}\n",
                out / "summary.md",
            )
        return EXIT_UNTESTABLE
    print(f"estuary-load: preflight: {preflight.summary}", file=sys.stderr)
    env = dict(
        os.environ,
        ESTUARY_LOAD_FINAL=str(out.resolve() / "final_stats.json"),
        ESTUARY_URL=args.estuary_url,
        ESTUARY_LOAD_MIX=mix,
        ESTUARY_CHARACTER_ID=args.estuary_character_id,
        ESTUARY_PLAYER_ID=args.estuary_player_id,
        ESTUARY_TIMEOUT=args.estuary_timeout,
        ESTUARY_SOCKETIO_PATH=args.estuary_socketio_path,
    )
    if args.estuary_ca_file:  # the engine's clients trust it, for Socket.IO and LiveKit alike
        env["ESTUARY_CA_FILE"] = str(Path(args.estuary_ca_file).resolve())
    if args.recordings:
        env["ESTUARY_LOAD_RECORDINGS"] = str(Path(args.recordings).resolve())
    if steps:
        env.update(
            ESTUARY_LOAD_STEPS=",".join(map(str, steps)),
            ESTUARY_LOAD_STEP_SECONDS=str(_duration("--step-time", args.step_time)),
            ESTUARY_LOAD_KNEE=str(out / "knee.json"),
        )
    locust = subprocess.run(locust_command(args, mix, steps, out), env=env)
    if args.worker:
        return 0 if locust.returncode in (0, 1) else EXIT_LOCUST
    final = out / "final_stats.json"
    if locust.returncode not in (0, 1) or not final.exists():
        print(
            f"estuary-load: Locust failed (exit status {locust.returncode}); no final stats in {out}", file=sys.stderr
        )
        return EXIT_LOCUST
    stats, failures = read_final(final)
    gate = evaluate(stats, failures, bounds)
    (out / "gate.json").write_text(json.dumps({**gate.as_dict(), "preflight": preflight.as_dict()}, indent=2))
    text = markdown(stats, gate, f"Estuary load: {shown}", preflight.summary)
    write_summary(text, out / "summary.md")
    print(text)
    print(
        f"estuary-load: gate {'passed' if gate.ok else 'FAILED'}; files in {out}/ (report.html, locust_*.csv, "
        "summary.md, gate.json, final_stats.json)",
        file=sys.stderr,
    )
    return 0 if gate.ok else 1


if __name__ == "__main__":
    sys.exit(main())
