"""The plugin's options, usage errors, markers and header, seen as a downstream project sees them."""

from __future__ import annotations

import json

import pytest

PASSING = """
import pytest

@pytest.mark.estuary_case("LK-1", "MUST")
def test_lk_1_something():
    '''A requirement in one sentence.'''

@pytest.mark.estuary_fake_only
def test_needs_the_fake():
    pass

@pytest.mark.estuary_live_only
def test_needs_a_live_server():
    pass
"""


def test_live_mode_without_url_or_key_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--estuary-live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--estuary-live needs --estuary-url (or ESTUARY_URL) and --estuary-api-key (or ESTUARY_API_KEY)*"]
    )


def test_live_mode_names_only_what_is_missing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESTUARY_API_KEY", "sk-test-0123456789")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--estuary-live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--estuary-live needs --estuary-url (or ESTUARY_URL)"])
    assert "sk-test-0123456789" not in result.stdout.str() + result.stderr.str()


def test_bad_url_and_timeout_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    bad_url = pytester.runpytest_subprocess("--estuary-url", "ftp://example.invalid/")
    assert bad_url.ret == pytest.ExitCode.USAGE_ERROR
    bad_url.stderr.fnmatch_lines(["*--estuary-url must start with http://, https://, ws:// or wss://*"])
    bad_timeout = pytester.runpytest_subprocess("--estuary-timeout", "soon")
    assert bad_timeout.ret == pytest.ExitCode.USAGE_ERROR
    bad_timeout.stderr.fnmatch_lines(
        ["*--estuary-timeout (or ESTUARY_TIMEOUT) must be a number of seconds, got 'soon'*"]
    )
    for value in ("nan", "inf", "-1", "0"):
        odd = pytester.runpytest_subprocess(f"--estuary-timeout={value}")
        assert odd.ret == pytest.ExitCode.USAGE_ERROR, value
        odd.stderr.fnmatch_lines(
            [f"*--estuary-timeout (or ESTUARY_TIMEOUT) must be a finite number of seconds > 0, got '{value}'*"]
        )


def test_markers_are_registered_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--strict-markers", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*runs only against a live server (--estuary-live)*"])
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    for name in ("estuary_case(id, level='MUST')", "estuary_fake_only", "estuary_live_only"):
        assert f"@pytest.mark.{name}" in markers


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('estuary_case("lk1")', "estuary_case id must look like 'LK-5'"),
        ('estuary_case("LK-1", "MAYBE")', "estuary_case level must be one of ('MUST', 'SHOULD', 'INFO')"),
    ],
)
def test_malformed_case_marker_is_a_usage_error(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_header_shows_mode_target_and_livekit_source_without_secrets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESTUARY_API_KEY", "sk-secret-header-check")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess(
        "--estuary-live", "--estuary-url", "https://user:pw@staging.example.invalid/socket?token=abc", "--co"
    )
    result.stdout.fnmatch_lines(
        [
            "estuary: mode=live, target=https://staging.example.invalid/socket, "
            "livekit=the live server's (from its livekit_token replies), client=ours"
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    for secret in ("sk-secret-header-check", "pw@", "token=abc"):
        assert secret not in output


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--fixtures")
    text = result.stdout.str()
    for name, words in {
        "estuary_server": "embedded fake Estuary server",
        "estuary_target": "URL and credentials",
        "estuary_client": "factory",
        "estuary_tested_client": "--estuary-client",
        "estuary_audio": "Audio helpers",
        "livekit_server": "running LiveKit server",
        "record_estuary_timing": "into the report",
    }.items():
        assert name in text, f"{name} missing from --fixtures"
        assert words in text, f"{name}'s docstring ({words!r}) missing from --fixtures"


def test_option_beats_ini_beats_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESTUARY_CHARACTER_ID", "from-env")
    monkeypatch.setenv("ESTUARY_PLAYER_ID", "player-from-env")
    pytester.makeini("[pytest]\nestuary_character_id = from-ini\n")
    pytester.makepyfile(
        """
        def test_show(estuary_settings):
            print("SETTINGS", estuary_settings.character_id, estuary_settings.player_id, estuary_settings.timeout)
        """
    )
    from_ini = pytester.runpytest_subprocess("-s")
    from_ini.stdout.fnmatch_lines(["*SETTINGS from-ini player-from-env 10.0*"])
    from_option = pytester.runpytest_subprocess(
        "-s", "--estuary-character-id", "from-option", "--estuary-timeout", "2.5"
    )
    from_option.stdout.fnmatch_lines(["*SETTINGS from-option player-from-env 2.5*"])


def test_an_unknown_client_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--estuary-client", "java-sdk")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--estuary-client 'java-sdk': expected one of ours, estuary-sdk, or 'cmd:<command*"])


def test_a_shim_that_cannot_start_stops_the_run_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--estuary-client", "cmd:/nonexistent/shim --flag", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "--estuary-client 'cmd:/nonexistent/shim --flag'" in output and "/nonexistent/shim" in output
    assert "1 passed" not in output


def test_the_report_names_the_client_under_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.estuary_case("SEL-3", "MUST")
        def test_case():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--estuary-report", "r.json", "--estuary-report-md", "r.md")
    assert result.ret == 0
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["run"]["client"]["name"] == "pytest-estuary" and report["run"]["client"]["option"] == "ours"
    assert "Client cases drove **pytest-estuary " in (pytester.path / "r.md").read_text()
