"""Fixtures of the platform's tests: a migrated database per backend (PostgreSQL and MariaDB,
the suite's servers), Redis under a key prefix of the test's own, and the platform served
in-process to an httpx client (its lifespan run as a server would)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from platform_helpers import serve_in_process

BACKENDS = ("postgresql", "mysql")
_LOGGERS = ("", "dbsight.access", "httpx")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The platform configures the root logger; the rest of the suite expects it untouched
    (dbsight writes its own JSON lines only while the application configured nothing)."""
    import logging

    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in _LOGGERS]
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers
    for logger, level in saved:
        logger.setLevel(level)


@pytest.fixture(scope="session")
def platform_pg_url(pg_server: Any) -> Iterator[str]:
    """A PostgreSQL database of the platform's tests, migrated to head; dropped at the end."""
    from dbsight_platform.core.config import load_settings
    from dbsight_platform.migrations import runner

    with pg_server.temporary_database() as dsn:
        url = load_settings(database_url=dsn, redis_url="redis://127.0.0.1:1/0").database_url
        runner.upgrade(load_settings(database_url=url, redis_url="redis://127.0.0.1:1/0"))
        yield url


@pytest.fixture(scope="session")
def platform_mysql_url(mysql_server: Any) -> Iterator[str]:
    """A MariaDB database of the platform's tests, migrated to head; dropped at the end."""
    from dbsight_platform.core.config import load_settings
    from dbsight_platform.migrations import runner

    name = mysql_server.create_database()
    try:
        url = load_settings(
            database_url=mysql_server.dsn(name), redis_url="redis://127.0.0.1:1/0"
        ).database_url
        runner.upgrade(load_settings(database_url=url, redis_url="redis://127.0.0.1:1/0"))
        yield url
    finally:
        mysql_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def platform_database_url(request: pytest.FixtureRequest) -> str:
    """The migrated database of each backend in turn."""
    fixture = "platform_pg_url" if request.param == "postgresql" else "platform_mysql_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def platform_settings_factory(redis_server: Any, redis_prefix: str) -> Callable[..., Any]:
    """``factory(database_url, **overrides)`` -> Settings on the test Redis and key prefix."""
    from dbsight_platform.core.config import load_settings

    def factory(database_url: str, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_server.url,
            "redis_key_prefix": redis_prefix,
            "log_level": "WARNING",
            # the limiter has tests of its own; here it would refuse the fuzzer's traffic
            "rate_limit_per_minute": 0,
        }
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture
def platform_settings(
    platform_database_url: str, platform_settings_factory: Callable[..., Any]
) -> Any:
    return platform_settings_factory(platform_database_url)


@pytest.fixture
async def platform_client(
    platform_settings: Any, fresh_runtime: Any
) -> AsyncIterator[httpx.AsyncClient]:
    from dbsight_platform.main import create_app

    async with serve_in_process(create_app(platform_settings)) as client:
        yield client
