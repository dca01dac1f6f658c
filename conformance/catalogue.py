"""The case catalogue (CASES.md), generated from the suites' own code.

``python -m conformance.catalogue`` rewrites conformance/CASES.md; ``--check`` exits 1 when stale.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATALOGUE_PATH", "Case", "collect_cases", "render"]

HERE = Path(__file__).parent
CATALOGUE_PATH = HERE / "CASES.md"


@dataclass(frozen=True)
class Case:
    id: str
    level: str
    module: str
    test: str
    requirement: str
    fake_only: bool


def _marker_name(node: ast.expr) -> str | None:
    """``pytest.mark.NAME`` or ``pytest.mark.NAME(...)`` → NAME."""
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) and target.value.attr == "mark":
        return target.attr
    return None


def _module_marks(tree: ast.Module) -> set[str]:
    marks: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            marks |= {name for value in values if (name := _marker_name(value))}
    return marks


def _case_args(decorator: ast.expr) -> tuple[str, str] | None:
    if not (isinstance(decorator, ast.Call) and _marker_name(decorator) == "estuary_case"):
        return None
    args = [a.value for a in decorator.args if isinstance(a, ast.Constant)]
    kwargs = {k.arg: k.value.value for k in decorator.keywords if isinstance(k.value, ast.Constant)}
    case_id = str(args[0] if args else kwargs.get("id"))
    level = str(args[1] if len(args) > 1 else kwargs.get("level", "MUST"))
    return case_id, level


def collect_cases(directory: Path = HERE) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_fake_only = "estuary_fake_only" in _module_marks(tree)
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            marks = {_marker_name(d) for d in node.decorator_list}
            doc = " ".join((ast.get_docstring(node) or "").split("\n\n")[0].split())
            for decorator in node.decorator_list:
                found = _case_args(decorator)
                if found:
                    fake_only = module_fake_only or "estuary_fake_only" in marks
                    cases.append(Case(found[0], found[1], path.stem, node.name, doc, fake_only))
    return sorted(cases, key=lambda c: (c.id.split("-")[0], int(c.id.split("-")[1]), c.test))


def render(cases: list[Case]) -> str:
    lines = [
        "# Conformance cases",
        "",
        "Generated from the code by `python -m conformance.catalogue`; do not edit by hand.",
        "`fake only` cases need the embedded fake server's controls and are skipped with `--estuary-live`.",
        "The SEL, ERR and LIFE cases test a client, the one `--estuary-client` names (default: this project's",
        "own), against the embedded fake; every other case tests the server.",
        "",
        "| ID | Level | Runs against | Module | Test | Requirement |",
        "|---|---|---|---|---|---|",
    ]
    for case in cases:
        where = "fake only" if case.fake_only else "fake + live"
        requirement = case.requirement.replace("|", "\\|")
        lines.append(f"| {case.id} | {case.level} | {where} | {case.module} | `{case.test}` | {requirement} |")
    ids = sorted({c.id for c in cases}, key=lambda i: (i.split("-")[0], int(i.split("-")[1])))
    lines += ["", f"{len(cases)} cases covering {len(ids)} requirement IDs.", ""]
    return "\n".join(lines + _explore_rows())


def _explore_rows() -> list[str]:
    """The explorer's cases: collected only with --estuary-explore, one per requirement it checks."""
    from conformance.explore.requirements import EXPLORED, LEVELS

    lines = [
        "## With --estuary-explore",
        "",
        "The stateful explorer (`conformance/explore`) adds one case per requirement it can break;",
        "they are collected only with `--estuary-explore` (README: Exploring).",
        "",
        "| ID | Level | Runs against | Module | Test | Requirement |",
        "|---|---|---|---|---|---|",
    ]
    for case_id, requirement in EXPLORED.items():
        text = requirement.replace("|", "\\|")
        test = f"`test_explore[{case_id}]`"
        lines.append(f"| {case_id} | {LEVELS[case_id]} | fake + live | explore/test_explore | {test} | {text} |")
    return [*lines, "", f"{len(EXPLORED)} EXPLORE cases.", ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when CASES.md is stale")
    args = parser.parse_args(argv)
    text = render(collect_cases())
    if args.check:
        current = CATALOGUE_PATH.read_text(encoding="utf-8") if CATALOGUE_PATH.exists() else ""
        if current != text:
            print(f"{CATALOGUE_PATH} is stale: run python -m conformance.catalogue", file=sys.stderr)
            return 1
        return 0
    CATALOGUE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {CATALOGUE_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
