"""pytest hooks for pytest-estuary: options, markers, skips, the conformance report.

The fixtures live in :mod:`pytest_estuary.fixtures`; the report engine in :mod:`pytest_estuary.report`.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import pytest

from pytest_estuary import native_exit, shadowing
from pytest_estuary import settings as settings_module
from pytest_estuary.clients.registry import resolve_client
from pytest_estuary.fixtures import (
    FAKE_ONLY_REASON,
    _estuary_fake_engine,
    estuary_audio,
    estuary_client,
    estuary_server,
    estuary_settings,
    estuary_target,
    estuary_tested_client,
    livekit_server,
    record_estuary_timing,
)
from pytest_estuary.report import (
    CASE_PROPERTY,
    VERDICT_PROPERTY,
    BaselineError,
    ConformanceReport,
    load_baseline,
    merge_explorer_findings,
)
from pytest_estuary.settings import SETTINGS_KEY, EstuarySettings, redact_url
from pytest_estuary.tested_clients import CLIENT_KIND_KEY
from pytest_estuary.verdicts import classify, set_current_case

__all__ = [
    "_estuary_fake_engine",
    "estuary_audio",
    "estuary_client",
    "estuary_server",
    "estuary_settings",
    "estuary_target",
    "estuary_tested_client",
    "livekit_server",
    "record_estuary_timing",
]

REPORT_KEY = pytest.StashKey[ConformanceReport]()
LIVE_ONLY_REASON = "runs only against a live server (--estuary-live)"
LEVELS = ("MUST", "SHOULD", "INFO")
_CASE_ID = re.compile(r"^[A-Z]+-\d+$")
JUNIT_VERDICT = "estuary_verdict_name"  # the call's verdict as one word, a --junitxml property

MARKERS = (
    "estuary_case(id, level='MUST'): links a test to a protocol.md requirement (level MUST, SHOULD or INFO)",
    "estuary_fake_only: needs control of the embedded fake server; skipped with --estuary-live",
    "estuary_live_only: runs only with --estuary-live",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_module.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    settings = EstuarySettings.from_config(config)
    shadowing.check(config, live=settings.live)
    if settings.fake_misbehave and not settings.live:
        _check_fake_misbehaviour(settings.fake_misbehave)
    config.stash[SETTINGS_KEY] = settings
    config.stash[CLIENT_KIND_KEY] = resolve_client(settings.client)  # validated: settings.validate()
    if config.pluginmanager.hasplugin("html"):  # pytest-html installed: the case columns in its table
        from pytest_estuary.html_report import HtmlColumns

        config.pluginmanager.register(HtmlColumns(), "estuary-html")
    if not hasattr(config, "workerinput"):  # the report is built once, on the controlling process
        report = ConformanceReport(
            mode=settings.mode,
            target=redact_url(settings.url) if settings.live else "embedded fake server",
            livekit_source=settings.livekit_source,
            strict=settings.strict,
        )
        report.secrets = [s for s in (settings.api_key, settings.livekit_api_secret) if s]
        if settings.report_baseline_path is not None:
            try:
                report.baseline = load_baseline(settings.report_baseline_path)
            except BaselineError as exc:
                raise pytest.UsageError(f"--estuary-report-baseline: {exc}") from None
        config.stash[REPORT_KEY] = report
        config.pluginmanager.register(ReportHooks(report, settings), "estuary-report")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A run whose fake, bot or client started livekit's native runtime ends at exit with its own
    status, before the interpreter finalizes under livekit's threads (see native_exit)."""
    native_exit.arm(lambda: int(session.exitstatus))


def _check_fake_misbehaviour(settings: dict[str, object]) -> None:
    """``--estuary-fake-misbehave`` names real settings with values of the right kind, or the run stops."""
    from fake_server.misbehaviour import Misbehaviour, MisbehaviourError

    try:
        Misbehaviour().updated(settings)
    except MisbehaviourError as exc:
        raise pytest.UsageError(f"--estuary-fake-misbehave: {exc}") from None


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[SETTINGS_KEY]
    target = redact_url(settings.url) if settings.live else "embedded fake server"
    return (
        f"estuary: mode={settings.mode}, target={target}, livekit={settings.livekit_source}, client={settings.client}"
    )


def case_marker(item: pytest.Item) -> tuple[str, str] | None:
    """The (id, level) of an ``estuary_case`` marker, validated; None for other tests."""
    marker = item.get_closest_marker("estuary_case")
    if marker is None:
        return None
    case_id = marker.args[0] if marker.args else marker.kwargs.get("id")
    level = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("level", "MUST")
    if not isinstance(case_id, str) or not _CASE_ID.match(case_id):
        raise pytest.UsageError(
            f"{item.nodeid}: estuary_case id must look like 'LK-5' (letters, '-', number), got {case_id!r}"
        )
    if level not in LEVELS:
        raise pytest.UsageError(f"{item.nodeid}: estuary_case level must be one of {LEVELS}, got {level!r}")
    return case_id, level


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = config.stash[SETTINGS_KEY].live
    for item in items:
        case = case_marker(item)
        if case is not None:
            doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
            requirement = " ".join(doc.strip().split("\n\n")[0].split())
            item.user_properties.append((CASE_PROPERTY, {"id": case[0], "level": case[1], "requirement": requirement}))
            item.user_properties.append(("estuary_case_id", case[0]))  # shows in --junitxml
        if live and item.get_closest_marker("estuary_fake_only"):
            item.add_marker(pytest.mark.skip(reason=FAKE_ONLY_REASON))
        if not live and item.get_closest_marker("estuary_live_only"):
            item.add_marker(pytest.mark.skip(reason=LIVE_ONLY_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Steps (:func:`pytest_estuary.verdicts.step`) need to know which case is running."""
    case = case_marker(item)
    set_current_case(case[0] if case else None)
    try:
        return (yield)
    finally:
        set_current_case(None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    case = case_marker(item)
    if case is None:
        return report
    if report.when != "call":
        if report.failed:  # a fixture or the teardown check broke: ERROR
            _junit_verdict(item, report, "ERROR")
        return report
    if not report.failed or call.excinfo is None:
        _junit_verdict(item, report, "SKIPPED" if report.skipped else "PASS")
        return report
    strict = item.config.stash[SETTINGS_KEY].strict
    verdict = classify(call.excinfo.value, case[1])
    if verdict["verdict"] == "BLOCKED":
        report.outcome = "skipped"  # not this case's failure: the blocking requirement's case fails
        report.longrepr = (str(item.path), item.location[1] or 0, str(verdict["reason"]))
    elif verdict["verdict"] == "NON-STRICT" and not strict:
        # A SHOULD/INFO failure is reported, not fatal: shown as xfail, kept as NON-STRICT.
        report.outcome = "skipped"
        report.wasxfail = f"NON-STRICT {case[0]} ({case[1]}) failed"
    report.user_properties.append((VERDICT_PROPERTY, verdict))
    _junit_verdict(item, report, str(verdict["verdict"]))
    return report


def _junit_verdict(item: pytest.Item, report: pytest.TestReport, verdict: str) -> None:
    """The verdict as one word for --junitxml, which writes the properties of a test's last report."""
    item.user_properties.append((JUNIT_VERDICT, verdict))
    if report.when == "teardown":
        report.user_properties.append((JUNIT_VERDICT, verdict))


class ReportHooks:
    """Hooks of the controlling process that feed and write the conformance report."""

    def __init__(self, report: ConformanceReport, settings: EstuarySettings) -> None:
        self.report = report
        self.settings = settings

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.report.add(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not (self.report.cases or self._writes_files):
            return
        terminalreporter.section("estuary conformance")
        for line in self.report.terminal_lines():
            terminalreporter.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Name the client under test; live mode: the preflight, so an untestable target costs
        seconds and one clear ERROR."""
        settings = self.settings
        if session.config.option.collectonly:
            return
        kind = session.config.stash[CLIENT_KIND_KEY]
        try:
            self.report.client = {"option": kind.option} | kind.info().to_json()
        except Exception as exc:  # a cmd: shim that does not start or greet: nothing can be tested
            pytest.exit(f"--estuary-client {kind.option!r}: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        if not settings.live:
            return
        from pytest_estuary.preflight import run_preflight

        assert settings.url and settings.api_key  # validated at configure time
        from pytest_estuary.tls import trust_in_process

        trust_in_process(settings.ca_file)  # livekit.rtc reads its roots from SSL_CERT_FILE only
        result = run_preflight(
            settings.url, settings.api_key, settings.character_id, settings.player_id, settings.timeout,
            ca_file=settings.ca_file, socketio_path=settings.socketio_path,
        )  # fmt: skip
        self.report.record_preflight(result.as_dict())
        if not result.ok:
            self._write_report()
            pytest.exit(f"estuary preflight: the target cannot be tested: {result.diagnosis}", returncode=1)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        merge_explorer_findings(self.report.cases)
        if self.report.cases or self._writes_files:
            self._write_report()
            # The gate also fails a run that executed no case (pytest's own 5 stays as it is).
            if self.report.gate_failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @property
    def _writes_files(self) -> bool:
        settings = self.settings
        return any((settings.report_path, settings.report_md_path, settings.report_html_path))

    def _write_report(self) -> None:
        from pytest_estuary import __version__

        settings = self.settings
        self.report.write(__version__, settings.report_path, settings.report_md_path, settings.report_html_path)
