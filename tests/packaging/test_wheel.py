"""Issue 11's proof: from the wheel alone, in an empty directory, the README works.

The README's example passes (plainly and with ``-n 2``), ``estuary-conformance`` passes a good
server and stops fast on a wrong key, a project's own ``fake_server.py`` or ``conformance/`` is
named as the problem, and the wheel carries what the package reads at run time.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_estuary.livekit_server import LiveKitCredentials

if TYPE_CHECKING:
    from tests.packaging.conftest import Built, Venv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_voice_app.py"
SHIM = ROOT / "examples" / "line_protocol_shim.py"
EXAMPLE_TESTS = len(re.findall(r"^(?:async )?def test_", EXAMPLE.read_text(), re.MULTILINE))
WRONG_KEY_BOUND = 15.0  # design.md: a target that cannot be tested ends the run within 15 s


def test_the_wheel_carries_what_the_package_reads_at_run_time(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
        compose = wheel.read("pytest_estuary/data/docker-compose.livekit.yml").decode()
    wanted = {
        "pytest_estuary/data/docker-compose.livekit.yml",
        "pytest_estuary/data/conformance.ini",
        f"{dist_info}/licenses/LICENSE",
        "conformance/CASES.md",
        "pytest_estuary/py.typed",
        "fake_server/py.typed",
    }
    utterances = (ROOT / "conformance" / "utterances").iterdir()
    wanted |= {f"conformance/utterances/{p.name}" for p in utterances if p.suffix in (".wav", ".txt")}
    assert wanted - names == set(), f"missing from the wheel: {sorted(wanted - names)}"
    assert compose == (ROOT / "docker-compose.livekit.yml").read_text()
    assert "node-ip" not in compose and "node_ip:" not in compose.split("LIVEKIT_CONFIG")[1]
    assert "Requires-Dist: python-socketio[asyncio-client]" in metadata
    assert "License-Expression: MIT" in metadata
    for script in (
        "estuary-conformance =",
        "estuary-matrix =",
        "estuary-livekit =",
        "estuary-fake-server =",
        "estuary = pytest_estuary.plugin",
    ):
        assert script in entry_points, entry_points
    assert "Provides-Extra: html" in metadata and "Provides-Extra: estuary-sdk" in metadata


def test_the_sdist_carries_the_example_and_the_set_up_files(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wanted = {
        "examples/test_voice_app.py",
        "LICENSE",
        "docker-compose.livekit.yml",
        "scripts/install_livekit_server.sh",
    }
    assert wanted - names == set(), f"missing from the sdist: {sorted(wanted - names)}"


def test_the_installed_package_is_the_wheels_not_the_checkouts(installed: Venv, project: Path) -> None:
    probe = (
        "import json, sys, pytest_estuary, fake_server, conformance; "
        "files = [m.__file__ for m in (pytest_estuary, fake_server, conformance)]; "
        "print(json.dumps({'files': files, 'path': sys.path}))"
    )
    result = installed.run(["python", "-c", probe], project, timeout=60)
    assert result.code == 0, result.output
    seen = json.loads(result.output.strip().splitlines()[-1])
    for file in seen["files"]:
        assert Path(file).is_relative_to(installed.site_packages), f"{file} is not the wheel's copy"
    on_path = [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    assert on_path == [], f"repository paths on sys.path: {on_path}"


def test_estuary_livekit_install_finds_the_cached_build(installed: Venv, project: Path) -> None:
    result = installed.run(["estuary-livekit", "install"], project, timeout=60)
    assert result.code == 0, result.output
    binary = Path(result.output.strip().splitlines()[-1])
    assert binary.name == "livekit-server" and binary.is_file(), result.output
    assert result.seconds < 5, f"a cached install took {result.seconds:.1f} s; it must do nothing"


def test_the_readme_example_passes(installed: Venv, project: Path) -> None:
    (project / EXAMPLE.name).write_text(EXAMPLE.read_text())
    result = installed.run(["pytest", "-p", "no:cacheprovider", "-q"], project, timeout=180)
    assert result.code == 0, result.output[-4000:]
    assert f"{EXAMPLE_TESTS} passed" in result.output, result.output[-4000:]
    assert "asyncio_default_fixture_loop_scope" not in result.output, "pytest-asyncio still warns about its loop scope"


def test_the_readme_example_passes_with_two_xdist_workers(installed: Venv, project: Path) -> None:
    (project / EXAMPLE.name).write_text(EXAMPLE.read_text())
    result = installed.run(["pytest", "-p", "no:cacheprovider", "-q", "-n", "2"], project, timeout=240)
    assert result.code == 0, result.output[-4000:]
    assert f"{EXAMPLE_TESTS} passed" in result.output, result.output[-4000:]


@pytest.fixture
def fake_from_venv(installed: Venv, project: Path, livekit_server: LiveKitCredentials) -> Iterator[dict[str, Any]]:
    """``estuary-fake-server`` of the installed wheel, on the session's livekit-server; what it printed."""
    env = installed.env(
        LIVEKIT_URL=livekit_server.url,
        LIVEKIT_API_KEY=livekit_server.api_key,
        LIVEKIT_API_SECRET=livekit_server.api_secret,
    )
    process = subprocess.Popen(
        [str(installed.bin / "estuary-fake-server")],  # no script: it recognises the suite's recordings
        cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(20):
                raise AssertionError("estuary-fake-server printed nothing within 20 s")
        line = process.stdout.readline()
        if not line:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"estuary-fake-server exited with {process.wait(5)}: {stderr[-2000:]}")
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_estuary_conformance_passes_a_good_server(
    installed: Venv, project: Path, fake_from_venv: dict[str, Any]
) -> None:
    report = project / "report.json"
    command = [
        "estuary-conformance", "-q", "--estuary-live", "--estuary-url", fake_from_venv["url"],
        "--estuary-api-key", fake_from_venv["api_key"], "--estuary-report", str(report),
    ]  # fmt: skip
    result = installed.run(command, project, timeout=400)
    assert result.code == 0, result.output[-5000:]
    assert report.is_file(), result.output[-3000:]
    data = json.loads(report.read_text())
    assert data["run"]["mode"] == "live"
    bad = [
        (c["id"], c["verdict"], c.get("reason"))
        for c in data["cases"]
        if c["verdict"] in ("FAIL", "ERROR", "NON-STRICT")
    ]
    assert bad == [], bad
    assert data["summary"]["gate"] == "pass"
    assert any(c["verdict"] == "PASS" for c in data["cases"])
    assert fake_from_venv["api_key"] not in report.read_text()


def test_a_projects_own_client_shim_is_tested_and_gets_its_matrix_column(installed: Venv, project: Path) -> None:
    """A user's shim (the README's example, copied into the project) drives client cases from the
    wheel, and estuary-matrix merges the report it wrote."""
    (project / "my_shim.py").write_text(SHIM.read_text())
    command = [
        "estuary-conformance", "-q", "-k", "test_sel_3 or test_err_6", "--estuary-client", "cmd:python my_shim.py",
        "--estuary-report", "shim.json",
    ]  # fmt: skip
    result = installed.run(command, project, timeout=300)
    assert result.code == 0, result.output[-4000:]
    report = json.loads((project / "shim.json").read_text())
    assert report["run"]["client"] == {
        "option": "cmd:python my_shim.py", "name": "example-shim", "version": "0.1",
        "capabilities": ["observable_transport"],
    }  # fmt: skip
    assert {c["id"]: c["verdict"] for c in report["cases"]} == {"SEL-3": "PASS", "ERR-6": "PASS"}
    merged = installed.run(["estuary-matrix", "shim.json", "--markdown", "matrix.md"], project, timeout=60)
    assert merged.code == 0, merged.output
    assert "| example-shim 0.1 | **PASS** |" in (project / "matrix.md").read_text()


def test_estuary_conformance_stops_fast_on_a_wrong_key(
    installed: Venv, project: Path, fake_from_venv: dict[str, Any]
) -> None:
    report = project / "report.json"
    command = [
        "estuary-conformance", "-q", "--estuary-live", "--estuary-url", fake_from_venv["url"],
        "--estuary-api-key", "wrong-key-0123456789", "--estuary-report", str(report),
    ]  # fmt: skip
    result = installed.run(command, project, timeout=120)
    assert result.code != 0, result.output[-3000:]
    assert result.seconds <= WRONG_KEY_BOUND, (
        f"a wrong key took {result.seconds:.1f} s to end the run (bound {WRONG_KEY_BOUND:.0f} s):\n"
        + result.output[-2000:]
    )
    assert "wrong-key-0123456789" not in result.output


def test_a_projects_own_fake_server_module_beside_its_conftest_stops_the_run(installed: Venv, project: Path) -> None:
    (project / "conftest.py").write_text("")
    shadow = project / "fake_server.py"
    shadow.write_text('"""This project\'s own fake server."""\n')
    (project / EXAMPLE.name).write_text(EXAMPLE.read_text())
    result = installed.run(["pytest", "-p", "no:cacheprovider", "-q"], project, timeout=60)
    assert result.code == pytest.ExitCode.USAGE_ERROR, result.output[-3000:]
    errors = [line for line in result.output.splitlines() if "pytest-estuary: 'fake_server' is" in line]
    assert len(errors) == 1 and str(shadow) in errors[0], result.output[-3000:]
    assert "Traceback" not in result.output and "ImportError" not in result.output, result.output[-3000:]


def test_a_projects_own_fake_server_module_beside_its_tests_is_named(installed: Venv, project: Path) -> None:
    """Without a conftest the module comes onto sys.path only at collection (pytest inserts the
    tests' directory), after configure: a test module importing fake_server (the example does)
    fails its collection with the one line, and a fixture's import fails its setup with it."""
    shadow = project / "fake_server.py"
    shadow.write_text('"""This project\'s own fake server."""\n')
    (project / EXAMPLE.name).write_text(EXAMPLE.read_text())
    result = installed.run(["pytest", "-p", "no:cacheprovider", "-q"], project, timeout=60)
    assert result.code != 0, result.output[-3000:]
    assert f"pytest-estuary: 'fake_server' is {shadow}," in result.output, result.output[-3000:]
    assert "cannot import name" not in result.output, result.output[-3000:]


def test_a_projects_own_conformance_package_is_named(installed: Venv, project: Path) -> None:
    (project / "conftest.py").write_text("")
    package = project / "conformance"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_mine.py").write_text("def test_mine() -> None:\n    pass\n")
    result = installed.run(["pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "conformance"], project, timeout=60)
    assert result.code == pytest.ExitCode.USAGE_ERROR, result.output[-3000:]
    errors = [line for line in result.output.splitlines() if "pytest-estuary: 'conformance' is" in line]
    assert len(errors) == 1 and str(package) in errors[0] and "estuary-conformance" in errors[0], result.output
    # estuary-conformance runs the installed suite by its path, whatever the project calls its packages.
    collected = installed.run(["estuary-conformance", "--collect-only", "-q"], project, timeout=60)
    assert collected.code == 0, collected.output[-3000:]
    assert "conformance/test_wire.py::" in collected.output and "test_mine" not in collected.output
