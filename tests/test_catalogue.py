"""conformance/CASES.md is generated from the code and must not go stale."""

from __future__ import annotations

from conformance.catalogue import CATALOGUE_PATH, collect_cases, render


def test_cases_md_is_up_to_date() -> None:
    expected = render(collect_cases())
    assert CATALOGUE_PATH.read_text(encoding="utf-8") == expected, (
        "conformance/CASES.md is stale: run `.venv/bin/python -m conformance.catalogue`"
    )


def test_every_case_names_its_id_and_states_its_requirement() -> None:
    for case in collect_cases():
        prefix = "test_" + case.id.lower().replace("-", "_") + "_"
        assert case.test.startswith(prefix), f"{case.test} should start with {prefix} (case ID in the name)"
        assert case.requirement.endswith("."), f"{case.test}: docstring must state the requirement in one sentence"
