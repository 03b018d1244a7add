"""Platform settings: required values, URL forms, profiles and their rules, .env handling
(secrets only from the environment outside development), the CLI's exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbsight_platform.core.config import SettingsError, load_settings

PG = "postgresql+asyncpg://app@127.0.0.1:5432/app"
REDIS = "redis://127.0.0.1:6379/0"
STRONG = "x" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PLATFORM_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_missing_values_name_their_variables() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DATABASE_URL: is required but not set" in message
    assert "REDIS_URL: is required but not set" in message


def test_urls_from_the_environment_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql+aiomysql://app:pw@db:3306/app")
    monkeypatch.setenv("REDIS_URL", REDIS)
    settings = load_settings()
    assert settings.database_url == "mysql+aiomysql://app:pw@db:3306/app"
    assert settings.database_backend == "mysql"
    assert settings.redis_url == REDIS


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://a@h/d", "postgresql+asyncpg://a@h/d"),
        ("postgres://a@h/d", "postgresql+asyncpg://a@h/d"),
        ("mysql://a@h/d", "mysql+aiomysql://a@h/d"),
        (PG, PG),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert load_settings(database_url=given, redis_url=REDIS).database_url == expected


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"database_url": "sqlite:///x.db"}, "DATABASE_URL: scheme 'sqlite' is not supported"),
        ({"database_url": "nonsense"}, "DATABASE_URL: must be a URL"),
        ({"redis_url": "http://x"}, "REDIS_URL: must start with redis://"),
        ({"db_pool_size": 0}, "PLATFORM_DB_POOL_SIZE:"),
        ({"port": 70000}, "PLATFORM_PORT:"),
        ({"environment": "qa"}, "PLATFORM_ENVIRONMENT:"),
        ({"otel_exporter_endpoint": "collector:4317"}, "PLATFORM_OTEL_EXPORTER_ENDPOINT: must"),
        ({"cors_origins": ["example.com"]}, "PLATFORM_CORS_ORIGINS:"),
    ],
)
def test_invalid_values(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**{"database_url": PG, "redis_url": REDIS, **values})
    assert fragment in str(caught.value)


def test_profiles() -> None:
    development = load_settings(database_url=PG, redis_url=REDIS)
    assert development.effective_log_format == "text"
    assert development.effective_trace_sample_rate == 1.0
    assert (development.db_pool_size, development.db_max_overflow) == (10, 20)
    assert (development.db_pool_recycle_s, development.db_pool_pre_ping) == (3600, True)
    production = load_settings(
        database_url=PG, redis_url=REDIS, environment="production", jwt_secret=STRONG
    )
    assert production.effective_log_format == "json"
    assert production.effective_trace_sample_rate == 0.01
    assert production.jwt_secret.get_secret_value() == STRONG
    assert STRONG not in repr(production)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_strict_rules_outside_development(environment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            database_url=PG,
            redis_url=REDIS,
            environment=environment,
            debug=True,
            cors_origins=["*"],
            db_echo=True,
        )
    message = str(caught.value)
    for fragment in ("debug must be off", "may not be '*'", "jwt_secret must be set", "db_echo"):
        assert fragment in message
    with pytest.raises(SettingsError, match="at least 32 characters for HS256"):
        load_settings(
            database_url=PG,
            redis_url=REDIS,
            environment=environment,
            jwt_secret="short-but-16-chars",
        )


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_jwt_secret_as_long_as_the_hash(algorithm: str, length: int) -> None:
    with pytest.raises(SettingsError, match=f"at least {length} characters for {algorithm}"):
        load_settings(
            database_url=PG, redis_url=REDIS, jwt_algorithm=algorithm, jwt_secret="k" * (length - 1)
        )
    settings = load_settings(
        database_url=PG, redis_url=REDIS, jwt_algorithm=algorithm, jwt_secret="k" * length
    )
    assert settings.jwt_algorithm == algorithm
    # The development default is long enough for every algorithm.
    assert load_settings(database_url=PG, redis_url=REDIS, jwt_algorithm=algorithm)


def test_dotenv_in_development(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DATABASE_URL={PG}\nREDIS_URL={REDIS}\nPLATFORM_DB_POOL_SIZE=7\n", encoding="utf-8"
    )
    settings = load_settings()
    assert settings.database_url == PG and settings.db_pool_size == 7


def test_dotenv_never_supplies_secrets_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        f"PLATFORM_ENVIRONMENT=production\nDATABASE_URL={PG}\nREDIS_URL={REDIS}\n"
        f"PLATFORM_JWT_SECRET={STRONG}\nPLATFORM_DB_POOL_SIZE=7\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DATABASE_URL: is required" in message and "REDIS_URL: is required" in message
    monkeypatch.setenv("DATABASE_URL", PG)
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("PLATFORM_JWT_SECRET", STRONG)
    settings = load_settings()
    assert settings.environment == "production" and settings.db_pool_size == 7


def test_cli_exits_2_on_invalid_settings(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PLATFORM_")}
    env.pop("DATABASE_URL", None)
    env["REDIS_URL"] = REDIS
    result = subprocess.run(
        [sys.executable, "-m", "dbsight_platform", "check-config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABASE_URL: is required but not set" in result.stderr
    env["DATABASE_URL"] = "postgresql://app:hunter2-pw@127.0.0.1/app"
    result = subprocess.run(
        [sys.executable, "-m", "dbsight_platform", "check-config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "database = postgresql" in result.stdout
    assert "hunter2" not in result.stdout
