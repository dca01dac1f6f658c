"""The user's adapter module as one script for the page: bundled with esbuild from the user's own
``node_modules``, with ``livekit-client`` missing or broken on demand (ESTUARY_CLIENT_LIVEKIT_LIBRARY).

A bundle is cached under ~/.cache/pytest-estuary/browser-bundles, keyed by the module, the mode
and esbuild, and used while none of the files esbuild read has changed (one shim process starts
per client, so the client cases would otherwise bundle the same module dozens of times).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_estuary.clients.shim import BROKEN_LIBRARY

__all__ = ["LIVEKIT_PACKAGE", "Bundle", "BundleError", "bundle", "find_esbuild"]

LIVEKIT_PACKAGE = "livekit-client"
ESBUILD_TIMEOUT = 120.0
STUB_VERSION = "1"  # part of the cache key: a change of the stubs below must not reuse old bundles
# What a browser says for an import nobody can resolve, and a library that throws while loading
# (the message of the Python shim's broken native library, so ERR-1 sees the same load error).
MISSING_STUB = (
    'const error = new TypeError(\'Failed to resolve module specifier "livekit-client". '
    "(estuary-browser-shim: ESTUARY_CLIENT_LIVEKIT_LIBRARY=missing)');\n"
    "error.code = 'MODULE_NOT_FOUND';\nthrow error;\nmodule.exports = {};\n"
)
BROKEN_STUB = (
    f"throw new Error('livekit-client failed to load: {BROKEN_LIBRARY} "
    "(estuary-browser-shim: ESTUARY_CLIENT_LIVEKIT_LIBRARY=broken)');\nmodule.exports = {};\n"
)


class BundleError(RuntimeError):
    """esbuild is missing or could not bundle the module (its whole output attached)."""


@dataclass(frozen=True)
class Bundle:
    script: str  # one ES module
    cached: bool


def _native(launcher: Path) -> Path:
    """esbuild's own binary beside its node launcher (``@esbuild/<platform>/bin/esbuild``): no node
    start per bundle, and its errors without the launcher's stack trace."""
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(platform.machine().lower(), "")
    modules = launcher.resolve().parent.parent.parent  # node_modules/esbuild/bin/esbuild → node_modules
    native = modules / "@esbuild" / f"{sys.platform}-{machine}" / "bin" / "esbuild"
    return native if native.is_file() and os.access(native, os.X_OK) else launcher


def find_esbuild(module: Path) -> str | None:
    """esbuild from the module's project (``node_modules/.bin`` in it or any parent), else PATH."""
    for folder in (module.parent, *module.parent.parents):
        candidate = folder / "node_modules" / ".bin" / "esbuild"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(_native(candidate))
    found = shutil.which("esbuild")
    return str(_native(Path(found))) if found else None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-estuary" / "browser-bundles"


def _inputs_unchanged(recorded: dict[str, int]) -> bool:
    for path, mtime in recorded.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return bool(recorded)


def bundle(module: Path, livekit_library: str, esbuild: str) -> Bundle:
    """``module`` and everything it imports as one ES module; ``livekit_library`` "missing" or
    "broken" replaces livekit-client by a module that throws when it is loaded."""
    module = module.resolve()
    esbuild = str(Path(esbuild).resolve())
    key = hashlib.sha256(f"{module}\0{livekit_library}\0{esbuild}\0{STUB_VERSION}".encode()).hexdigest()[:24]
    cache = _cache_dir()
    script_file, inputs_file = cache / f"{key}.js", cache / f"{key}.inputs.json"
    with contextlib.suppress(OSError, ValueError):
        if _inputs_unchanged(json.loads(inputs_file.read_text())):
            return Bundle(script_file.read_text(encoding="utf-8"), cached=True)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="estuary-bundle-") as work:
        folder = Path(work)
        command = [
            esbuild, str(module), "--bundle", "--format=esm", "--platform=browser", "--target=es2022",
            f"--outfile={folder / 'out.js'}", f"--metafile={folder / 'meta.json'}", "--log-level=warning",
        ]  # fmt: skip
        if livekit_library in ("missing", "broken"):
            stub = folder / f"livekit-{livekit_library}.cjs"
            stub.write_text(MISSING_STUB if livekit_library == "missing" else BROKEN_STUB)
            command.append(f"--alias:{LIVEKIT_PACKAGE}={stub}")
        try:
            done = subprocess.run(
                command, cwd=module.parent, capture_output=True, text=True, timeout=ESBUILD_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BundleError(f"esbuild {esbuild} could not run on {module}: {exc}") from exc
        if done.returncode != 0:
            raise BundleError(
                f"esbuild could not bundle {module} (exit status {done.returncode}); its output:\n"
                f"{(done.stderr + done.stdout).rstrip()}"
            )
        script = (folder / "out.js").read_text(encoding="utf-8")
        meta = json.loads((folder / "meta.json").read_text())
        inputs = {}
        for name in meta.get("inputs", {}):
            path = (module.parent / name).resolve()
            if not str(path).startswith(str(folder.resolve())):  # the stub lives only for this build
                with contextlib.suppress(OSError):
                    inputs[str(path)] = os.stat(path).st_mtime_ns
    # Written whole, then renamed: a shim starting at the same time reads the old bundle or the new.
    for target, text in ((script_file, script), (inputs_file, json.dumps(inputs))):
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    return Bundle(script, cached=False)
