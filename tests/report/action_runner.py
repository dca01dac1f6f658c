"""Runs a composite action's steps as a GitHub runner does, on this machine: each ``run:`` script
under ``bash --noprofile --norc -eo pipefail`` with the step's ``env:``, the GITHUB_ENV /
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, ``if:`` conditions, and the action's outputs.

Only the expressions the action uses are understood (``inputs.*``, ``github.action_path``,
``steps.<id>.outputs.*``, ``always()``, ``==`` / ``!=`` against a quoted string); anything else is
an error, so the action cannot drift into syntax this runner would misread. As on GitHub, a
composite action's inputs reach its scripts only through the ``env:`` it maps them to. The one
``uses:`` step, actions/upload-artifact, is recorded (which files it would upload), not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ActionRun", "StepResult", "clean_environment", "run_action"]

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_COMPARE = re.compile(r"^(\S+)\s*(==|!=)\s*'([^']*)'$")
STEP_TIMEOUT = 300.0


@dataclass
class StepResult:
    name: str
    outcome: str  # "success", "failure" or "skipped"
    output: str = ""
    seconds: float = 0.0


@dataclass
class ActionRun:
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    uploaded: dict[str, list[Path]] = field(default_factory=dict)  # artifact name -> files found

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)

    @property
    def output(self) -> str:
        return "\n".join(step.output for step in self.steps)


class _Context:
    def __init__(self, action_path: Path, inputs: dict[str, str]) -> None:
        self.action_path = action_path
        self.inputs = inputs
        self.step_outputs: dict[str, dict[str, str]] = {}

    def value(self, expression: str) -> str:
        if expression.startswith("inputs."):
            return self.inputs[expression.removeprefix("inputs.")]
        if expression == "github.action_path":
            return str(self.action_path)
        parts = expression.split(".")
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            return self.step_outputs.get(parts[1], {}).get(parts[3], "")
        raise ValueError(f"action_runner: expression {expression!r} is not understood")

    def text(self, template: str) -> str:
        return _EXPR.sub(lambda m: self.value(m.group(1)), template)

    def condition(self, expression: str | None, failed: bool) -> bool:
        if expression is None:
            return not failed  # success()
        inner = _EXPR.fullmatch(expression.strip())
        expression = inner.group(1) if inner else expression.strip()
        if expression == "always()":
            return True
        compare = _COMPARE.match(expression)
        if compare is None:
            raise ValueError(f"action_runner: condition {expression!r} is not understood")
        left, operator, right = compare.groups()
        equal = self.value(left) == right
        return (equal if operator == "==" else not equal) and not failed


def _read_pairs(path: Path) -> dict[str, str]:
    """KEY=VALUE lines and KEY<<DELIMITER blocks, as the runner reads GITHUB_ENV and GITHUB_OUTPUT."""
    pairs: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            pairs[key] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
        index += 1
    path.write_text("", encoding="utf-8")
    return pairs


def run_action(action_dir: Path, inputs: dict[str, str], workdir: Path, env: dict[str, str]) -> ActionRun:
    """Run ``action_dir/action.yml`` with ``inputs`` (the rest from its defaults) in ``workdir``."""
    action: dict[str, Any] = yaml.safe_load((action_dir / "action.yml").read_text(encoding="utf-8"))
    unknown = sorted(set(inputs) - set(action["inputs"]))
    if unknown:
        raise ValueError(f"action_runner: the action has no inputs {unknown}")
    context = _Context(action_dir, {})
    context.inputs = {
        name: inputs[name] if name in inputs else context.text(str(spec.get("default", "")))
        for name, spec in action["inputs"].items()
    }
    files = {
        name: workdir / f".runner-{name.lower()}" for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
    }
    for path in files.values():
        path.write_text("", encoding="utf-8")
    temp = workdir / ".runner-temp"
    temp.mkdir(exist_ok=True)
    base = env | {name: str(path) for name, path in files.items()}
    base |= {"RUNNER_TEMP": str(temp), "GITHUB_ACTION_PATH": str(action_dir), "GITHUB_ACTIONS": "true", "CI": "true"}
    run = ActionRun()
    exported: dict[str, str] = {}
    for index, step in enumerate(action["runs"]["steps"]):
        name = str(step.get("name", f"step {index + 1}"))
        if not context.condition(step.get("if"), run.failed):
            run.steps.append(StepResult(name, "skipped"))
            continue
        if "uses" in step:
            run.steps.append(_upload(step, context, workdir, run))
            continue
        step_env = base | exported | {k: context.text(str(v)) for k, v in (step.get("env") or {}).items()}
        script = temp / f"step-{index}.sh"
        script.write_text(context.text(step["run"]), encoding="utf-8")
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workdir,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        outcome = "success" if done.returncode == 0 else "failure"
        run.steps.append(StepResult(name, outcome, done.stdout + done.stderr, time.monotonic() - started))
        exported |= _read_pairs(files["GITHUB_ENV"])
        if "id" in step:
            context.step_outputs[str(step["id"])] = _read_pairs(files["GITHUB_OUTPUT"])
        else:
            _read_pairs(files["GITHUB_OUTPUT"])
    run.outputs = {name: context.text(str(spec["value"])) for name, spec in (action.get("outputs") or {}).items()}
    run.summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
    return run


def _upload(step: dict[str, Any], context: _Context, workdir: Path, run: ActionRun) -> StepResult:
    name = str(step.get("name", step["uses"]))
    if not str(step["uses"]).startswith("actions/upload-artifact@"):
        raise ValueError(f"action_runner: cannot run {step['uses']!r}")
    given = {k: context.text(str(v)) for k, v in (step.get("with") or {}).items()}
    paths = [workdir / line.strip() for line in given["path"].splitlines() if line.strip()]
    run.uploaded[given["name"]] = [path for path in paths if path.is_file()]
    return StepResult(name, "success", f"would upload {[str(p) for p in run.uploaded[given['name']]]}")


def clean_environment() -> dict[str, str]:
    """This process's environment without a runner's own variables (the runner sets those)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "ESTUARY_"))}
