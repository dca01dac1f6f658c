"""pytest_estuary.shadowing: a project's own ``fake_server`` or ``conformance`` is named in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_estuary import shadowing


@pytest.fixture
def fresh_imports(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Forget this process's imports of the two names, so sys.path decides again (restored after)."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("fake_server", "conformance"):
            monkeypatch.delitem(sys.modules, name)
    return monkeypatch


def test_our_own_packages_are_not_reported(fresh_imports: pytest.MonkeyPatch) -> None:
    assert shadowing.shadowing_message("fake_server") is None
    assert shadowing.shadowing_message("conformance") is None


def test_a_module_file_named_fake_server_is_named(tmp_path: Path, fresh_imports: pytest.MonkeyPatch) -> None:
    shadow = tmp_path / "fake_server.py"
    shadow.write_text("")
    fresh_imports.syspath_prepend(str(tmp_path))
    message = shadowing.shadowing_message("fake_server")
    assert message is not None and "\n" not in message
    assert str(shadow) in message and str(shadowing.ours("fake_server")) in message and "rename" in message


def test_a_package_named_conformance_is_named_by_its_directory(
    tmp_path: Path, fresh_imports: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conformance").mkdir()
    (tmp_path / "conformance" / "__init__.py").write_text("")
    fresh_imports.syspath_prepend(str(tmp_path))
    message = shadowing.shadowing_message("conformance")
    assert message is not None and f"'conformance' is {tmp_path / 'conformance'}," in message
    assert "estuary-conformance" in message


def test_a_directory_without_init_does_not_hide_our_package(tmp_path: Path, fresh_imports: pytest.MonkeyPatch) -> None:
    """A namespace portion loses to a regular package anywhere on sys.path: nothing is hidden."""
    (tmp_path / "conformance").mkdir()
    fresh_imports.syspath_prepend(str(tmp_path))
    assert shadowing.shadowing_message("conformance") is None


def test_a_module_already_imported_counts_as_it_is(fresh_imports: pytest.MonkeyPatch, tmp_path: Path) -> None:
    impostor = type(sys)("fake_server")
    impostor.__file__ = str(tmp_path / "fake_server.py")
    fresh_imports.setitem(sys.modules, "fake_server", impostor)
    message = shadowing.shadowing_message("fake_server")
    assert message is not None and str(tmp_path / "fake_server.py") in message


CHECKING_PLUGIN = """
from pytest_estuary import shadowing

def pytest_configure(config):
    shadowing.check(config, live=config.getoption("estuary_live") or False)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose conftest calls the check the way the plugin does."""
    pytester.makeconftest(CHECKING_PLUGIN)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    return pytester


def test_check_stops_a_run_with_one_line(project: pytest.Pytester) -> None:
    project.makepyfile(fake_server="")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if "pytest-estuary:" in line]
    assert len(lines) == 1 and str(project.path / "fake_server.py") in lines[0], result.stderr.str()


def test_live_runs_do_not_need_the_fake(project: pytest.Pytester) -> None:
    project.makepyfile(fake_server="")
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--estuary-live", "--estuary-url", "http://127.0.0.1:9", "--estuary-api-key", "k",
    )  # fmt: skip
    assert "pytest-estuary: 'fake_server'" not in result.stderr.str() + result.stdout.str()


def test_conformance_is_checked_only_when_the_run_asks_for_it(project: pytest.Pytester) -> None:
    (project.path / "conformance").mkdir()
    (project.path / "conformance" / "__init__.py").write_text("")
    (project.path / "conformance" / "test_mine.py").write_text("def test_mine():\n    pass\n")
    ordinary = project.runpytest_subprocess("-p", "no:cacheprovider", "test_nothing.py")
    assert ordinary.ret == 0, ordinary.stdout.str() + ordinary.stderr.str()
    asked = project.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs", "conformance")
    assert asked.ret == pytest.ExitCode.USAGE_ERROR
    assert "pytest-estuary: 'conformance' is" in asked.stderr.str(), asked.stderr.str()


def test_require_ours_fails_a_setup_with_the_line_not_an_import_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(fake_server="")
    pytester.makepyfile(
        test_uses_fake="""
        import pytest
        from pytest_estuary import shadowing

        @pytest.fixture
        def fake():
            shadowing.require_ours("fake_server")
            from fake_server import FakeEstuaryServer
            return FakeEstuaryServer

        def test_it(fake):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:estuary", "test_uses_fake.py")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert f"pytest-estuary: 'fake_server' is {pytester.path / 'fake_server.py'}," in output, output
    assert "cannot import name" not in output and "Traceback" not in output, output


def test_a_test_module_importing_a_hidden_fake_server_gets_the_line(pytester: pytest.Pytester) -> None:
    """The module sits beside the tests, below the invocation dir, without a conftest: it reaches
    sys.path only when pytest collects the tests, after configure (the plugin's own check runs)."""
    suite = pytester.mkdir("suite")
    (suite / "fake_server.py").write_text("")
    (suite / "test_app.py").write_text("from fake_server import FakeEstuaryServer\n\ndef test_it():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "suite")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert f"pytest-estuary: 'fake_server' is {suite / 'fake_server.py'}," in output, output
    assert "cannot import name" not in output, output
