"""Locust (gevent's monkey patching) stays out of pytest, the plugin and the package's public API."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys


def test_importing_the_plugin_and_the_load_api_patches_nothing() -> None:
    code = (
        "import sys, socket, threading\n"
        "import pytest_estuary.plugin, pytest_estuary.load, pytest_estuary.load.cli\n"
        "loaded = sorted(m for m in ('locust', 'gevent') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "assert socket.socket.__module__ == 'socket' and threading.Lock.__module__ != 'gevent.thread'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_load_all_is_complete() -> None:
    module = importlib.import_module("pytest_estuary.load")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(module.__all__), sorted(public - set(module.__all__))
