"""``estuary-livekit install``: build the pinned livekit-server with the Go toolchain into the cache.

The plugin looks for the binary at :func:`pytest_estuary.livekit_server.cached_binary_path`
(``~/.cache/pytest-estuary`` or ``$PYTEST_ESTUARY_CACHE``); this command puts it there and prints
that path. With the binary already there it does nothing but print the path.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from pytest_estuary.livekit_server import LIVEKIT_SERVER_VERSION, cache_dir, cached_binary_path

__all__ = ["BUILD_TIMEOUT", "InstallError", "install", "main"]

MODULE = "github.com/livekit/livekit-server/cmd/server"
BUILD_TIMEOUT = 1800.0  # seconds; a cold build fetches ~150 modules and compiles them (3 min here)

NO_GO = (
    "the Go toolchain ('go') is not on PATH. livekit-server {version} is built from source: install "
    "Go 1.21 or newer (https://go.dev/doc/install; it fetches the Go 1.26 toolchain this version needs), "
    "then run 'estuary-livekit install' again. Or, without Go: point the plugin at a running LiveKit "
    "server with LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET; or give it a binary with "
    "LIVEKIT_SERVER_BIN; or run a Docker engine, and the plugin starts livekit/livekit-server:{version} "
    "with the compose file it ships."
)


class InstallError(RuntimeError):
    """livekit-server could not be built; the message says which step failed and what to do."""


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """One build at a time per cache: parallel first runs (xdist, two CI jobs) wait for the first."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(*, timeout: float = BUILD_TIMEOUT) -> Path:
    """Build livekit-server into the cache unless it is there; return the binary's path."""
    dest = cached_binary_path()
    if _executable(dest):
        return dest
    go = shutil.which("go")
    if go is None:
        raise InstallError(NO_GO.format(version=LIVEKIT_SERVER_VERSION))
    with _build_lock(cache_dir()):
        if _executable(dest):  # another process built it while this one waited for the lock
            return dest
        print(
            f"estuary-livekit: building livekit-server {LIVEKIT_SERVER_VERSION} with {go} "
            "(first run only; a few minutes)",
            file=sys.stderr,
            flush=True,
        )
        _build(go, dest, timeout)
    return dest


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _build(go: str, dest: Path, timeout: float) -> None:
    target = f"{MODULE}@{LIVEKIT_SERVER_VERSION}"
    with tempfile.TemporaryDirectory(prefix="estuary-livekit-build-") as build_dir:
        gobin = Path(build_dir)
        # CGO off: a static binary, no C compiler needed. -mod=mod: a GOFLAGS=-mod=vendor of the
        # user's would make 'go install pkg@version' refuse to run.
        env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": str(gobin), "GOFLAGS": "-mod=mod"}
        log_path = gobin / "build.log"
        with log_path.open("wb") as log_file:
            try:
                result = subprocess.run(
                    [go, "install", target],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise InstallError(
                    f"'go install {target}' did not finish within {timeout:.0f} s; "
                    f"last lines of its output:\n{_tail(log_path)}"
                ) from None
        if result.returncode != 0:
            raise InstallError(
                f"'go install {target}' failed with status {result.returncode} (CGO_ENABLED=0); "
                f"last lines of its output:\n{_tail(log_path)}"
            )
        built = gobin / "server"  # the module's command is named after its directory, cmd/server
        if not _executable(built):
            raise InstallError(f"'go install {target}' succeeded but left no binary at {built}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = dest.with_name(f"{dest.name}.tmp.{os.getpid()}")
        shutil.move(str(built), staged)  # GOBIN may be on another filesystem than the cache
        os.replace(staged, dest)  # atomic: a concurrent reader never sees half a binary


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "<no output>"
    except OSError:
        return "<no output>"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="estuary-livekit",
        description=f"Get the livekit-server ({LIVEKIT_SERVER_VERSION}) that pytest-estuary starts for its tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "install",
        help="build livekit-server with Go into the cache (once) and print its path",
        description=(
            f"Build livekit-server {LIVEKIT_SERVER_VERSION} with 'go install' (CGO_ENABLED=0) into "
            f"{cached_binary_path().parent} ($PYTEST_ESTUARY_CACHE overrides the cache) and print its "
            "path; with the binary already there, only print the path."
        ),
    )
    commands.add_parser("path", help="print where the plugin looks for the built binary; exit 1 if it is not there")
    args = parser.parse_args(argv)
    if args.command == "path":
        path = cached_binary_path()
        print(path)
        return 0 if _executable(path) else 1
    try:
        print(install())
    except InstallError as error:
        print(f"estuary-livekit: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
