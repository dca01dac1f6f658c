"""The wheel carries estuary-browser-shim: its console script and the scripts its page runs."""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.packaging.conftest import Built


def test_the_wheel_carries_the_browser_shim(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    page = {f"pytest_estuary/clients/browser/page/{name}" for name in ("index.html", "media.js", "runtime.js")}
    assert page - names == set(), f"missing from the wheel: {sorted(page - names)}"
    assert "estuary-browser-shim = pytest_estuary.clients.browser.cli:main" in entry_points, entry_points
