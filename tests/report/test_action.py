"""The GitHub Action (action.yml): its steps run as a runner runs them, against a standalone fake
server, and actionlint checks it and the README's workflows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from action_runner import ActionRun, clean_environment, run_action
from tools import actionlint

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ("estuary-report.json", "estuary-report.md", "estuary-report.html", "estuary-junit.xml")
README_SECTION = "## In CI: the GitHub Action"
ACTION_REF = re.compile(r"uses: OWNER/pytest-estuary@[\w.]+")


def _run(tmp_path: Path, **inputs: str) -> ActionRun:
    # "installed": the action uses the pytest-estuary of this venv (the namespace has no package index)
    given = {"package": "installed", "python": sys.executable} | inputs
    return run_action(ROOT, given, tmp_path, clean_environment())


def _secret_free(run: ActionRun, directory: Path, key: str) -> None:
    for name in REPORTS:
        assert key not in (directory / name).read_text(encoding="utf-8"), name
    assert key not in run.summary
    lines = [line for line in run.output.splitlines() if key in line]
    assert lines == [f"::add-mask::{key}"], "the key is printed only to mask it"


def test_action_against_a_conforming_server(standalone_fake: Any, tmp_path: Path) -> None:
    server = standalone_fake()
    run = _run(
        tmp_path,
        url=server["url"],
        **{"api-key": server["api_key"], "strict": "true", "pytest-args": '-k "test_conn_1 or test_lk_1_"'},
    )
    assert not run.failed, run.output
    assert run.outputs == {"gate": "pass", "exit-code": "0"}
    assert [step.outcome for step in run.steps] == ["success", "success", "success", "skipped"]
    assert run.summary.startswith("## Estuary conformance") and "**Gate: PASS**" in run.summary
    assert [path.name for path in run.uploaded["estuary-conformance"]] == list(REPORTS)
    report = json.loads((tmp_path / "estuary-report.json").read_text())
    assert report["run"]["mode"] == "live" and report["run"]["strict"] is True
    assert {case["id"] for case in report["cases"]} == {"CONN-1", "LK-1"}
    _secret_free(run, tmp_path, server["api_key"])


def test_action_fails_the_step_on_the_gate(standalone_fake: Any, tmp_path: Path) -> None:
    server = standalone_fake(misbehave={"token_reply_missing": "room"})
    run = _run(
        tmp_path,
        url=server["url"],
        **{"api-key": server["api_key"], "pytest-args": "-k test_lk_1_", "report-html": "r.html"},
    )
    assert run.failed
    assert run.outputs == {"gate": "fail", "exit-code": "1"}
    gate = run.step("Fail on the conformance gate")
    assert gate.outcome == "failure"
    assert "::error title=Estuary conformance::gate fail (estuary-conformance exit 1)" in gate.output
    assert run.step("Upload the reports").outcome == "success"  # the reports are uploaded all the same
    assert (tmp_path / "r.html") in run.uploaded["estuary-conformance"]
    assert "**FAIL LK-1**" in run.summary
    assert '<span class="gate fail" id=gate>Gate: FAIL</span>' in (tmp_path / "r.html").read_text()


def test_action_runs_client_cases_against_the_embedded_fake(tmp_path: Path) -> None:
    """No url: the client repo's use; livekit-server comes from the cache the install step fills."""
    shim = f"cmd:{sys.executable} {ROOT / 'examples' / 'line_protocol_shim.py'}"
    run = _run(tmp_path, client=shim, **{"pytest-args": "-k test_sel_4"})
    assert not run.failed, run.output
    report = json.loads((tmp_path / "estuary-report.json").read_text())
    assert report["run"]["mode"] == "fake"
    assert report["run"]["client"]["name"] == "example-shim"
    assert [case["verdict"] for case in report["cases"]] == ["PASS"]


def _readme_workflows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, flags=re.S)


def _lint(project: Path, workflows: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """actionlint over ``workflows`` in a project whose root holds our action.yml: a README
    workflow's ``uses: OWNER/pytest-estuary@…`` becomes ``uses: ./`` so its inputs are checked
    against action.yml."""
    directory = project / ".github" / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    (project / ".git").mkdir(exist_ok=True)  # actionlint reads local actions only inside a project
    (project / "action.yml").write_text((ROOT / "action.yml").read_text(encoding="utf-8"), encoding="utf-8")
    for name, text in workflows.items():
        (directory / name).write_text(ACTION_REF.sub("uses: ./", text), encoding="utf-8")
    return subprocess.run(
        [actionlint(), "-no-color", *sorted(str(directory / name) for name in workflows)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _action_as_workflow() -> str:
    """actionlint checks workflows, not action metadata: the action's steps, as one job of a
    workflow_dispatch workflow with the same inputs (expression defaults left out), get its checks
    (expressions, shellcheck of every run: script, upload-artifact's inputs)."""
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    inputs = {
        name: {
            "description": spec["description"],
            "required": False,
            "default": "" if "${{" in str(spec.get("default", "")) else spec.get("default", ""),
        }
        for name, spec in action["inputs"].items()
    }
    workflow = {
        "name": "action steps",
        "on": {"workflow_dispatch": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


def test_actionlint_passes_the_action_and_the_readme_workflows(tmp_path: Path) -> None:
    workflows = _readme_workflows()
    assert len(workflows) == 2, "the README shows a staging-server workflow and a client-repo workflow"
    assert all(ACTION_REF.search(text) for text in workflows)
    files = {f"readme-{n}.yml": text for n, text in enumerate(workflows, start=1)} | {
        "action.yml": _action_as_workflow()
    }
    done = _lint(tmp_path, files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_wrong_input_and_a_shell_bug(tmp_path: Path) -> None:
    """The check can fail: an input the action does not have, and an unquoted variable in run:."""
    broken = _readme_workflows()[0].replace("api-key:", "api_key:", 1) + ("      - run: echo $UNQUOTED_VARIABLE_HERE\n")
    done = _lint(tmp_path, {"broken.yml": broken})
    assert done.returncode != 0
    assert 'input "api_key" is not defined in action' in done.stdout, done.stdout
    assert "SC2086" in done.stdout, done.stdout
