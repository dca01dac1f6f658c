"""``estuary-conformance [PYTEST OPTIONS]``: run the installed conformance suite by its path.

``pytest --pyargs conformance`` imports the suite by name, so a project's own ``conformance``
package can stand in for it. This command hands pytest the directory installed beside
``pytest_estuary`` instead, with a configuration of its own (``pytest_estuary/data/conformance.ini``),
and passes every other option through::

    estuary-conformance --estuary-live --estuary-url https://staging.example.com \\
        --estuary-api-key "$ESTUARY_API_KEY" --estuary-report report.json --estuary-report-md report.md

The exit status is pytest's: non-zero when the conformance gate fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["CONFIG_FILE", "command_line", "main", "suite_dir"]

CONFIG_FILE = Path(__file__).resolve().parent / "data" / "conformance.ini"
HELP = """usage: estuary-conformance [PYTEST OPTIONS]

Runs the Estuary conformance suite installed with pytest-estuary: by its path, so a package of
your own named 'conformance' cannot stand in for it, and with the suite's own pytest config
(-c FILE brings yours; -o NAME=VALUE changes one setting). Against your server:

  estuary-conformance --estuary-live --estuary-url URL --estuary-api-key KEY \\
      --estuary-report report.json --estuary-report-md report.md --estuary-report-html report.html

Without --estuary-live it runs against the embedded fake server. The exit status is pytest's:
non-zero when the conformance gate fails. pytest's own options follow ("pytest.main()" is this command).
"""


def suite_dir() -> Path:
    """The ``conformance`` package installed with this ``pytest_estuary`` (its sibling directory)."""
    suite = Path(__file__).resolve().parent.parent / "conformance"
    if not (suite / "conftest.py").is_file() or not (suite / "CASES.md").is_file():
        raise FileNotFoundError(f"the conformance suite is not installed beside pytest_estuary: no {suite}/conftest.py")
    return suite


def _given(args: Sequence[str], *flags: str) -> bool:
    """Whether any of ``flags`` is among ``args`` (``--flag value``, ``--flag=value`` or ``-cFILE``)."""
    return any(
        arg == flag or arg.startswith(flag + "=") or (len(flag) == 2 and arg.startswith(flag))
        for arg in args
        for flag in flags
    )


def command_line(args: Sequence[str]) -> list[str]:
    """pytest's arguments: the defaults the caller did not set, the caller's options, the suite's path."""
    suite = suite_dir()
    defaults: list[str] = ["-p", "no:cacheprovider"]  # the suite lives in site-packages: write no cache there
    if not _given(args, "-c", "--config-file", "--inifile"):
        defaults += ["-c", str(CONFIG_FILE)]
    if not _given(args, "--rootdir"):
        defaults.append(f"--rootdir={suite.parent}")  # test ids read conformance/test_wire.py::…
    return [*defaults, *args, str(suite)]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = command_line(args)
    except FileNotFoundError as error:
        print(f"estuary-conformance: {error}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        if any(arg in ("-h", "--help") for arg in args):
            print(HELP)
        code = int(pytest.main(command))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop writing, as pytest's own command does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
