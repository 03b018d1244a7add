"""Settings: only DBSIGHT_ names, read at configure() rather than at import, one clear line
per invalid setting."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbsight.core import ConfigError, Recorder, Settings, load_settings
from dbsight.core import _settings_env

# An ordinary FastAPI application's .env: none of these names is dbsight's.
APP_ENV = """\
DATABASE_URL=postgresql://app:hunter2-db-password@db:5432/app
SECRET_KEY=abc-app-secret-key
DEBUG=true
ALLOWED_HOSTS=["localhost", "example.com"]
export REDIS_URL="redis://:redis-password@cache:6379/0"
"""
APP_SECRETS = ("hunter2-db-password", "abc-app-secret-key", "redis-password")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The current directory is an empty one, the environment holds no dbsight setting and
    every unknown name is reported again."""
    for name in list(os.environ):
        if name.upper().startswith("DBSIGHT_") and not name.upper().startswith("DBSIGHT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    _settings_env._reported.clear()
    yield tmp_path
    _settings_env._reported.clear()


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DBSIGHT_")}
    env.update(extra)
    return env


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=clean_environment(**env), capture_output=True, text=True, timeout=60
    )


PYTHON = [sys.executable, "-c"]
DBSIGHT = [sys.executable, "-c", "from dbsight.cli import main; main()"]


# -- what is read --------------------------------------------------------------------
def test_defaults_are_private_and_loopback_only(workdir: Path) -> None:
    settings = Settings()
    assert settings.enabled
    assert settings.include_query_bodies is False
    assert settings.otlp_endpoint is None
    assert settings.sqlcommenter == "off"


def test_environment_variables_are_read_with_prefix(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBSIGHT_SLOW_QUERY_THRESHOLD_MS", "250")
    monkeypatch.setenv("DBSIGHT_ENVIRONMENT", "staging")
    settings = load_settings()
    assert settings.slow_query_threshold_s == pytest.approx(0.25)
    assert settings.effective_trace_sample_rate == pytest.approx(0.1)


def test_an_applications_env_file_is_left_alone_and_its_dbsight_names_are_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (workdir / ".env").write_text(
        APP_ENV
        + "DBSIGHT_SERVICE_NAME=shop\n"
        + "dbsight_slow_query_threshold_ms=75\n"  # any letter case, like pydantic-settings
        + "DBSIGHT_ENVIRONMENT=staging\n"
        + "DBSIGHT_EXTERNAL_API_SERVICES={\"API.Stripe.com\": \"stripe\"}\n"
        + "DBSIGHT_OTLP_ENDPOINT=\n"  # empty: unset
    )
    monkeypatch.setenv("DBSIGHT_ENVIRONMENT", "prod")  # the environment wins over the file
    monkeypatch.setenv("DBSIGHT_SERVICE_NAME", "")  # empty: unset, so the file's applies
    with caplog.at_level(logging.WARNING, logger="dbsight"):
        settings = Settings()
    assert settings.service_name == "shop"
    assert settings.slow_query_threshold_ms == 75
    assert settings.environment == "prod"
    assert settings.external_api_services == {"api.stripe.com": "stripe"}
    assert settings.otlp_endpoint is None
    assert not caplog.records


def test_sample_rates_follow_environment_unless_set(workdir: Path) -> None:
    assert Settings(environment="prod").effective_trace_sample_rate == pytest.approx(0.01)
    assert Settings(environment="dev").effective_log_sample_rate == pytest.approx(1.0)
    assert Settings(environment="prod", trace_sample_rate=0.5).effective_trace_sample_rate == 0.5


def test_arguments_win_over_variables(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBSIGHT_SLOW_QUERY_THRESHOLD_MS", "-5")  # invalid, and not used
    assert Settings(slow_query_threshold_ms=20).slow_query_threshold_ms == 20


def test_an_unreadable_env_file_is_not_an_error(workdir: Path) -> None:
    (workdir / ".env").write_bytes(b"PASSWORD=caf\xe9\nDBSIGHT_SERVICE_NAME=shop\n")
    assert Settings().service_name == "shop"
    (workdir / ".env").unlink()
    (workdir / ".env").mkdir()
    assert Settings().service_name == "app"


def test_defaults_read_no_variable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBSIGHT_SLOW_QUERY_THRESHOLD_MS", "-5")
    monkeypatch.setenv("DBSIGHT_SERVICE_NAME", "shop")
    assert Settings.defaults().service_name == "app"
    assert Recorder().settings.slow_query_threshold_ms == 500.0


# -- unknown names ---------------------------------------------------------------------
def test_an_unknown_dbsight_name_is_a_warning_naming_the_closest_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DBSIGHT_SLOW_QUERY_TRESHOLD_MS", "100")
    (workdir / ".env").write_text("DBSIGHT_NO_SUCH_THING=hidden-value\n")
    with caplog.at_level(logging.WARNING, logger="dbsight"):
        settings = Settings()
        Settings()  # once per process
    assert settings.slow_query_threshold_ms == 500.0
    messages = [r.getMessage() for r in caplog.records if r.name == "dbsight"]
    assert messages == [
        f"DBSIGHT_NO_SUCH_THING in {workdir.resolve() / '.env'} is not a dbsight setting: "
        "ignored",
        "DBSIGHT_SLOW_QUERY_TRESHOLD_MS in the environment is not a dbsight setting: ignored; "
        "did you mean DBSIGHT_SLOW_QUERY_THRESHOLD_MS?",
    ]
    assert "hidden-value" not in caplog.text


def test_names_other_parts_of_dbsight_read_are_not_reported(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("DBSIGHT_PG_BINDIR", "DBSIGHT_DEMO_DSN"):
        monkeypatch.setenv(name, "x")
    with caplog.at_level(logging.WARNING, logger="dbsight"):
        Settings()
    assert not caplog.records


def test_an_unknown_argument_is_an_error_naming_the_closest_setting(workdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(slow_query_treshold_ms=5)
    assert str(info.value) == (
        "unknown dbsight setting slow_query_treshold_ms (Settings argument); "
        "did you mean slow_query_threshold_ms?"
    )


# -- invalid values ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "value", "line"),
    [
        (
            "DBSIGHT_SLOW_QUERY_THRESHOLD_MS",
            "-5",
            "invalid dbsight setting slow_query_threshold_ms (DBSIGHT_SLOW_QUERY_THRESHOLD_MS "
            "in the environment): must be a number greater than 0 and at most 3600000, "
            "got '-5'",
        ),
        (
            "DBSIGHT_TRACE_SAMPLE_RATE",
            "1.5",
            "invalid dbsight setting trace_sample_rate (DBSIGHT_TRACE_SAMPLE_RATE in the "
            "environment): must be a number from 0 to 1, got '1.5'",
        ),
        (
            "DBSIGHT_STATS_MAX_FINGERPRINTS",
            "lots",
            "invalid dbsight setting stats_max_fingerprints (DBSIGHT_STATS_MAX_FINGERPRINTS in "
            "the environment): must be a whole number from 10 to 1000000, got 'lots'",
        ),
        (
            "DBSIGHT_ENVIRONMENT",
            "qa",
            "invalid dbsight setting environment (DBSIGHT_ENVIRONMENT in the environment): "
            "must be 'dev', 'staging' or 'prod', got 'qa'",
        ),
        (
            "DBSIGHT_METRICS_ENABLED",
            "maybe",
            "invalid dbsight setting metrics_enabled (DBSIGHT_METRICS_ENABLED in the "
            "environment): must be true or false (or 1/0, yes/no, on/off), got 'maybe'",
        ),
        (
            "DBSIGHT_OTLP_ENDPOINT",
            "collector:4318",
            "invalid dbsight setting otlp_endpoint (DBSIGHT_OTLP_ENDPOINT in the environment): "
            "must be an http:// or https:// URL, got 'collector:4318'",
        ),
        (
            "DBSIGHT_EXTERNAL_API_SERVICES",
            "not json",
            "invalid dbsight setting external_api_services (DBSIGHT_EXTERNAL_API_SERVICES in "
            "the environment): must be a JSON object such as {\"api.stripe.com\": \"stripe\"}, "
            "got 'not json'",
        ),
    ],
)
def test_an_invalid_variable_is_one_line_with_field_variable_rule_and_value(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, line: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == line


def test_every_invalid_setting_has_its_line_and_the_file_is_named(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text(APP_ENV + "DBSIGHT_EXPLAIN_INTERVAL_S=-1\n")
    monkeypatch.setenv("DBSIGHT_SERVICE_NAME", "x" * 300)
    with pytest.raises(ConfigError) as info:
        Settings()
    lines = str(info.value).splitlines()
    assert lines == [
        "invalid dbsight setting service_name (DBSIGHT_SERVICE_NAME in the environment): "
        "must have 1 to 200 characters, got '" + "x" * 57 + "...'",
        f"invalid dbsight setting explain_interval_s (DBSIGHT_EXPLAIN_INTERVAL_S in "
        f"{workdir.resolve() / '.env'}): must be a number from 0 to 86400, got '-1'",
    ]
    assert not any(secret in str(info.value) for secret in APP_SECRETS)


def test_url_credentials_and_query_values_are_never_shown(workdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(otlp_endpoint="grpc://user:otlp-token@collector:4317/v1?api_key=k3y&x=1")
    assert str(info.value) == (
        "invalid dbsight setting otlp_endpoint (Settings argument): must be an http:// or "
        "https:// URL, got 'grpc://***@collector:4317/v1?api_key=***&x=***'"
    )


# -- a real application's folder, in processes of their own --------------------------------
def test_in_an_applications_folder_import_configure_and_the_cli_work(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(APP_ENV + "DBSIGHT_SERVICE_NAME=shop\n")
    results = [
        run(PYTHON + ["import dbsight"], tmp_path),
        run(PYTHON + ["import dbsight; print(dbsight.configure().settings.service_name)"],
            tmp_path),
        run(DBSIGHT + ["version"], tmp_path),
    ]
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert not any(secret in result.stdout for secret in APP_SECRETS)
    assert results[1].stdout == "shop\n"


def test_an_invalid_setting_never_fails_the_import_and_fails_the_cli_with_exit_2(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text(APP_ENV + "DBSIGHT_EXTERNAL_API_SERVICES=not json\n")
    bad = {"DBSIGHT_SLOW_QUERY_THRESHOLD_MS": "-5"}
    imported = run(PYTHON + ["import dbsight; print('imported')"], tmp_path, **bad)
    assert (imported.returncode, imported.stdout, imported.stderr) == (0, "imported\n", "")
    version = run(DBSIGHT + ["version"], tmp_path, **bad)  # uses no setting
    assert version.returncode == 0 and version.stderr == ""

    configured = run(
        PYTHON + ["import dbsight\ntry: dbsight.configure()\n"
                  "except dbsight.ConfigError as exc: print(exc)"],
        tmp_path,
        **bad,
    )
    assert configured.returncode == 0, configured.stderr
    # the proxy configures dbsight before it listens: the first use
    upstream = "postgresql://u@127.0.0.1:1/db"
    proxy = run(
        DBSIGHT + ["proxy", "--listen", "127.0.0.1:0", "--upstream", upstream], tmp_path, **bad
    )
    assert proxy.returncode == 2
    expected = [
        "invalid dbsight setting slow_query_threshold_ms (DBSIGHT_SLOW_QUERY_THRESHOLD_MS in "
        "the environment): must be a number greater than 0 and at most 3600000, got '-5'",
        "invalid dbsight setting external_api_services (DBSIGHT_EXTERNAL_API_SERVICES in "
        f"{tmp_path.resolve() / '.env'}): must be a JSON object such as "
        "{\"api.stripe.com\": \"stripe\"}, got 'not json'",
    ]
    assert configured.stdout.splitlines() == expected
    assert proxy.stderr.splitlines() == expected
    assert proxy.stdout == ""
    for result in (imported, version, configured, proxy):
        output = result.stdout + result.stderr
        assert "Traceback" not in output and "Value error" not in output
        assert not any(secret in output for secret in APP_SECRETS)
