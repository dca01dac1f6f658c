"""Each EXPLORE case states its own requirement (the plugin takes a case's text from its docstring)."""

from __future__ import annotations

import pytest

from conformance.explore.requirements import EXPLORED
from pytest_estuary.report import CASE_PROPERTY


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", "") != "test_explore" or callspec is None:
            continue
        requirement = callspec.params["requirement"]
        text = f"EXPLORE: {EXPLORED[requirement]}"
        item.user_properties[:] = [
            (key, {**value, "requirement": text} if key == CASE_PROPERTY and isinstance(value, dict) else value)
            for key, value in item.user_properties
        ]
