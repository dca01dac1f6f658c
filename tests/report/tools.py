"""Where the report tests find Chromium and actionlint (scripts/install_report_tools.sh installs
both); a missing one is an error naming that script, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pytest_estuary.livekit_server import cache_dir

__all__ = ["ACTIONLINT_VERSION", "INSTALL_HINT", "actionlint", "chromium"]

ACTIONLINT_VERSION = "v1.7.12"  # the version scripts/install_report_tools.sh builds
INSTALL_HINT = "run scripts/install_report_tools.sh (Debian's chromium and shellcheck, actionlint from Go)"


def chromium() -> str:
    """Debian's Chromium (``ESTUARY_CHROMIUM`` overrides)."""
    path = os.environ.get("ESTUARY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise FileNotFoundError(f"no Chromium at {path}: {INSTALL_HINT}")
    return path


def actionlint() -> str:
    """The pinned actionlint build in the pytest-estuary cache."""
    path = cache_dir() / f"actionlint-{ACTIONLINT_VERSION}"
    if not path.is_file():
        raise FileNotFoundError(f"no actionlint at {path}: {INSTALL_HINT}")
    return str(path)
