"""Every public package re-exports its API with a complete, importable ``__all__``."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["pytest_estuary", "pytest_estuary.client", "pytest_estuary.report", "pytest_estuary.load", "fake_server"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    missing = [symbol for symbol in exported if not hasattr(module, symbol)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    public = {
        symbol
        for symbol, value in vars(module).items()
        if not symbol.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith(name)
    }
    assert public <= exported, f"{name} defines public names missing from __all__: {sorted(public - exported)}"
