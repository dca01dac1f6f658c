"""``estuary-browser-shim --module ./my-adapter.mjs [--chromium PATH]``: a browser client behind
the JSON-lines protocol, for ``--estuary-client "cmd:estuary-browser-shim --module ..."``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_estuary.clients.browser.relay import BrowserShimError, Options, serve
from pytest_estuary.clients.interface import LIVEKIT_LIBRARY_ENV

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="estuary-browser-shim",
        description="Run a JavaScript client in headless Chromium behind the JSON-lines client protocol "
        "(README, 'A browser client').",
    )
    parser.add_argument(
        "--module",
        required=True,
        type=Path,
        help="the adapter: an ES module exporting create(settings, hooks) (and optionally info)",
    )
    parser.add_argument("--chromium", help="the Chromium executable (default: chromium etc. on PATH)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    livekit_library = os.environ.get(LIVEKIT_LIBRARY_ENV, "present") or "present"
    if livekit_library not in ("present", "missing", "broken"):
        print(
            f"estuary-browser-shim: {LIVEKIT_LIBRARY_ENV}={livekit_library!r}; expected present, missing or broken",
            file=sys.stderr,
        )
        return 2
    options = Options(module=args.module, chromium=args.chromium, livekit_library=livekit_library)
    try:
        return asyncio.run(serve(options))
    except BrowserShimError as exc:
        if not exc.shown:
            print(exc, file=sys.stderr, flush=True)
        return 1
    except RuntimeError as exc:  # Chromium would not start
        print(f"estuary-browser-shim: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
