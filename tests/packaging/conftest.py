"""The package as a user gets it: the wheel built from this tree, installed into a fresh venv in an
empty directory outside the repository, and commands run there as a downstream project runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_DISTRIBUTION = ("pytest_estuary", "fake_server", "conformance")
# The minimal pytest config a downstream project needs (the README's): pytest-asyncio warns on
# every run without a loop scope, and -W error turns that warning into an INTERNALERROR.
DOWNSTREAM_INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Result:
    code: int
    output: str
    seconds: float


@dataclass(frozen=True)
class Venv:
    """A venv holding the installed wheel; the test venv's other packages are visible, ours are not."""

    root: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a shell in which this venv is active and nothing points at the repo."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(ROOT)]
        env.update(PATH=os.pathsep.join([str(self.bin), *path]), VIRTUAL_ENV=str(self.root), **extra)
        return env

    def run(self, command: Sequence[str], cwd: Path, *, timeout: float, env: dict[str, str] | None = None) -> Result:
        """Run one of the venv's commands (``pytest``, ``estuary-conformance``, …) in ``cwd``."""
        program = str(self.bin / command[0]) if (self.bin / command[0]).exists() else command[0]
        started = time.monotonic()
        try:
            done = subprocess.run(
                [program, *command[1:]],
                cwd=cwd,
                env=env or self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            seen = expired.stdout if isinstance(expired.stdout, str) else (expired.stdout or b"").decode()
            raise AssertionError(
                f"{' '.join(command)} did not finish within {timeout:.0f} s; its output so far:\n{seen[-3000:]}"
            ) from None
        return Result(done.returncode, done.stdout, time.monotonic() - started)


def _tree_files() -> list[str]:
    """The files of this working tree that git tracks or would track (what an sdist may draw from)."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """sdist and wheel of this tree, as ``python -m build`` makes them (the wheel from the sdist).

    The tree is copied first: building in place would write build/ and egg-info into a checkout
    others work in. No build isolation: inside the network namespace nothing can be downloaded, so
    the build uses the test venv's setuptools (the ``test`` extra pins a new enough one).
    """
    base = tmp_path_factory.mktemp("build")
    source = base / "source"
    for name in _tree_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    dist = base / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"python -m build failed:\n{(done.stdout + done.stderr)[-3000:]}"
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, f"expected one wheel and one sdist in {sorted(dist.iterdir())}"
    return Built(wheel=wheels[0], sdist=sdists[0])


def _dependency_view(target: Path) -> Path:
    """The test venv's site-packages as links, less this project's editable install.

    The new venv reads its dependencies (livekit, numpy, …) from here, so no network is needed;
    the editable install's finder, .pth and dist-info stay out, so ``import pytest_estuary`` can
    only find the wheel's copy.
    """
    source = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in source.iterdir():
        name = entry.name
        if (
            name.startswith(("__editable__", "pytest_estuary-", "pytest_estuary.", "_pytest_estuary"))
            or name in OUR_DISTRIBUTION
            or name.endswith(".pth")
        ):
            continue
        (target / name).symlink_to(entry)
    return target


def _script_body(name: str) -> str:
    """The test venv's console script ``name`` without its ``#!`` line (it names the test venv's python)."""
    own = Path(sys.executable).parent / name
    if own.is_file():
        return own.read_text().split("\n", 1)[1]
    return "import sys\nimport pytest\nsys.exit(pytest.main())\n"


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv in an empty temporary directory with the wheel installed (``--no-deps``)."""
    base = tmp_path_factory.mktemp("downstream-venv")
    assert not base.resolve().is_relative_to(ROOT), f"{base} is inside the repository"
    root = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
    purelib = subprocess.run(
        [str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    site_packages = Path(purelib)
    deps = _dependency_view(base / "deps")
    (site_packages / "test_venv_dependencies.pth").write_text(f"{deps}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "--no-deps",
         "--no-index", "--no-compile", "-q", str(built.wheel)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"pip install of the wheel failed:\n{(done.stdout + done.stderr)[-3000:]}"
    # pytest itself comes from the test venv (no --no-deps install brings its script): the command
    # a user's `pip install` would have put in bin/.
    pytest_script = root / "bin" / "pytest"
    pytest_script.write_text(f"#!{root / 'bin' / 'python'}\n" + _script_body("pytest"))
    pytest_script.chmod(0o755)
    return Venv(root=root, site_packages=site_packages)


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty downstream project directory (outside the repository) with the README's pytest config."""
    path = tmp_path_factory.mktemp("project")
    (path / "pytest.ini").write_text(DOWNSTREAM_INI)
    return path
