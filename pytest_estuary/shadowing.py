"""Stop a run whose ``fake_server`` or ``conformance`` is a user's module, not pytest-estuary's own.

Both are top-level names that a project may well use itself. A ``fake_server.py`` next to a
conftest makes every fixture fail with ``ImportError: cannot import name 'FakeEstuaryServer'``; a
``conformance/`` package makes ``pytest --pyargs conformance`` run the project's tests and exit 0.
:func:`check` turns either into one line naming the file and what to do, at configure time;
:func:`require_ours` does the same where the fake is imported, for a module that only comes onto
sys.path during collection (beside test files, without a conftest).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

__all__ = ["check", "ours", "require_ours", "resolved", "shadowing_message"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where pytest_estuary, fake_server, conformance sit


def ours(name: str) -> Path:
    """Where pytest-estuary's own top-level package ``name`` is installed (beside ``pytest_estuary``)."""
    return _PACKAGE_ROOT / name


def resolved(name: str) -> Path | None:
    """The file or directory that ``import name`` gives now (None when nothing is found).

    A module already imported counts as it is; otherwise sys.path decides, as it will at import.
    """
    module = sys.modules.get(name)
    if module is not None:
        location = getattr(module, "__file__", None)
        if location:
            return Path(location).resolve()
        paths = list(getattr(module, "__path__", []))
        return Path(paths[0]).resolve() if paths else None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def shadowing_message(name: str) -> str | None:
    """One line when ``name`` resolves outside pytest-estuary's own package of that name, else None."""
    found = resolved(name)
    own = ours(name)
    if found is None or found == own or own in found.parents:
        return None
    shown = found.parent if found.name == "__init__.py" else found
    if name == "fake_server":
        return (
            f"pytest-estuary: 'fake_server' is {shown}, which hides pytest-estuary's fake server ({own}); "
            "rename your module (or move it out of a directory on sys.path: rootdir, conftest dirs, PYTHONPATH)"
        )
    return (
        f"pytest-estuary: 'conformance' is {shown}, which hides pytest-estuary's suite ({own}), so "
        "'--pyargs conformance' would run your tests instead: run the installed suite with "
        "'estuary-conformance', or rename your package"
    )


def _asks_for_our_suite(config: pytest.Config) -> bool:
    """Whether this run collects ``conformance`` by module name (``--pyargs conformance[.x]``)."""
    if not config.getoption("pyargs", False):
        return False
    names = (str(arg).split("::", 1)[0].split("[", 1)[0] for arg in config.args)
    return any(name == "conformance" or name.startswith("conformance.") for name in names)


def check(config: pytest.Config, *, live: bool = False) -> None:
    """Raise :class:`pytest.UsageError` (one line) when a run would use a user's module in place of ours.

    ``fake_server`` is checked unless ``live`` (live runs never start the fake). ``conformance``
    is checked only when the run asks for it with ``--pyargs``: a project's own ``conformance``
    package is no business of the plugin's otherwise. Unless ``live``, it also registers a hook
    that replaces a test module's collection error from a hidden ``fake_server`` with the line.
    """
    names = [] if live else ["fake_server"]
    if _asks_for_our_suite(config):
        names.append("conformance")
    for name in names:
        message = shadowing_message(name)
        if message is not None:
            raise pytest.UsageError(message)
    if not live and not config.pluginmanager.has_plugin(_HINT_PLUGIN):
        config.pluginmanager.register(_CollectionHint(), _HINT_PLUGIN)


_HINT_PLUGIN = "estuary-shadowing"


class _CollectionHint:
    """A test module that imports ``fake_server`` and finds the project's own: the one line, not the
    ImportError. (Beside test files without a conftest, the module comes onto sys.path only when
    pytest collects them, after :func:`check` ran.)"""

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        if report.failed and "fake_server" in str(report.longrepr):
            message = shadowing_message("fake_server")
            if message is not None:
                report.longrepr = message
        return report


def require_ours(name: str) -> None:
    """Fail the current test's setup with the one line when ``name`` is not ours (no ImportError traceback).

    Call it right before importing ``name`` in a fixture.
    """
    message = shadowing_message(name)
    if message is not None:
        pytest.fail(message, pytrace=False)
