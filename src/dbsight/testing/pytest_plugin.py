"""pytest fixtures giving tests real PostgreSQL, MariaDB and Redis servers.

Load it from a conftest.py with ``pytest_plugins = ["dbsight.testing.pytest_plugin"]``
(or ``pytest -p dbsight.testing.pytest_plugin``).
Nothing starts until a test asks for a fixture; servers started here are private to the
test session (free loopback ports, temporary directories) and stopped at its end.

Fixtures (all values are plain strings/objects, usable from sync and asyncio tests alike):

PostgreSQL
    ``pg_server`` (session) -> :class:`~dbsight.testing.PgServer`: the server named by
        ``$DBSIGHT_TEST_PG_DSN`` (a superuser DSN), else a private embedded cluster.
    ``pg_admin_dsn`` (session) -> str: superuser DSN on the ``postgres`` database.
    ``pg_dsn`` (function) -> str: a fresh database of the test's own
        (``dbsight_test_<hex>``, from template0), dropped WITH (FORCE) afterwards.
    ``pg_cluster_factory`` (session) -> :class:`~dbsight.testing.PgClusterFactory`:
        ``pg_cluster_factory(replicas=2)`` -> a private primary + streaming replicas.
    ``pg_replicated`` (session) -> :class:`~dbsight.testing.PgCluster`: primary + 1 replica.
    ``pg_replicated_db`` (function) -> :class:`~dbsight.testing.ReplicatedDatabase`: a fresh
        database on ``pg_replicated`` (already on the replica), dropped afterwards.

MariaDB
    ``mysql_server`` (session) -> :class:`~dbsight.testing.MysqlServer`:
        ``$DBSIGHT_TEST_MYSQL_DSN`` (``mysql://root:pw@host:port/``), else a private server.
    ``mysql_dsn`` (function) -> str: ``mysql://...`` URL of a fresh database, dropped after.
        ``dbsight.testing.mysql_connect_kwargs(mysql_dsn)`` gives ``pymysql.connect`` kwargs.

Redis
    ``redis_server`` (session) -> :class:`~dbsight.testing.RedisServer`:
        ``$DBSIGHT_TEST_REDIS_URL``, else a private redis-server.
    ``redis_prefix`` (function) -> str: a unique key prefix (``dbsight_test:<hex>:``); every
        key starting with it is deleted after the test.
    ``redis_url`` (function) -> str: the server URL (requesting it also sets up the prefix
        cleanup).

When server binaries are missing and no DSN is configured, the fixtures skip the test with
the reason; set ``DBSIGHT_TEST_REQUIRE_SERVERS=1`` (CI) to make that an error instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from dbsight.testing._servers import (
        MysqlServer,
        PgCluster,
        PgClusterFactory,
        PgServer,
        RedisServer,
        ReplicatedDatabase,
    )

ENV_PG_DSN = "DBSIGHT_TEST_PG_DSN"
ENV_MYSQL_DSN = "DBSIGHT_TEST_MYSQL_DSN"
ENV_REDIS_URL = "DBSIGHT_TEST_REDIS_URL"
ENV_REQUIRE = "DBSIGHT_TEST_REQUIRE_SERVERS"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _missing_binaries(reason: str) -> NoReturn:
    if _env(ENV_REQUIRE) not in (None, "0", "false", "no"):
        pytest.fail(f"{reason} ({ENV_REQUIRE} is set, so this is an error)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server for this session (see the module docstring)."""
    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.postgres import EmbeddedPostgres
    from dbsight.testing._servers import PgServer

    dsn = _env(ENV_PG_DSN)
    if dsn is not None:
        yield PgServer.from_dsn(dsn)
        return
    embedded = EmbeddedPostgres(name="dbsight-test")
    try:
        embedded.start()
    except BinariesNotFoundError as exc:
        _missing_binaries(f"no PostgreSQL to test against: {exc} (or set {ENV_PG_DSN})")
    try:
        yield PgServer.from_embedded(embedded)
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_server: PgServer) -> str:
    """Superuser DSN on the ``postgres`` database of ``pg_server``."""
    return pg_server.admin_dsn


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """DSN of a fresh database for this test only, dropped afterwards."""
    with pg_server.temporary_database() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_cluster_factory() -> Iterator[PgClusterFactory]:
    """Factory of private primary + replicas clusters: ``pg_cluster_factory(replicas=2)``."""
    from dbsight.embedded.postgres import PostgresNotFoundError, find_pg_bindir
    from dbsight.testing._servers import PgClusterFactory

    factory = PgClusterFactory()
    try:
        find_pg_bindir()
    except PostgresNotFoundError as exc:
        _missing_binaries(f"no PostgreSQL server binaries for replication tests: {exc}")
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def pg_replicated(pg_cluster_factory: PgClusterFactory) -> PgCluster:
    """A private primary with one streaming hot-standby replica (shared by the session)."""
    return pg_cluster_factory(replicas=1)


@pytest.fixture
def pg_replicated_db(pg_replicated: PgCluster) -> Iterator[ReplicatedDatabase]:
    """A fresh database on ``pg_replicated``, present on the replica too; dropped after."""
    database = pg_replicated.create_database()
    try:
        yield database
    finally:
        pg_replicated.drop_database(database.name)


# --------------------------------------------------------------------------- MariaDB


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[MysqlServer]:
    """The MariaDB server for this session (see the module docstring)."""
    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.mariadb import EmbeddedMariaDB
    from dbsight.testing._servers import MysqlServer

    dsn = _env(ENV_MYSQL_DSN)
    if dsn is not None:
        yield MysqlServer.from_dsn(dsn)
        return
    embedded = EmbeddedMariaDB()
    try:
        embedded.start()
    except BinariesNotFoundError as exc:
        _missing_binaries(f"no MariaDB to test against: {exc} (or set {ENV_MYSQL_DSN})")
    try:
        yield MysqlServer.from_embedded(embedded)
    finally:
        embedded.stop()


@pytest.fixture
def mysql_dsn(mysql_server: MysqlServer) -> Iterator[str]:
    """``mysql://`` URL of a fresh database for this test only, dropped afterwards."""
    name = mysql_server.create_database()
    try:
        yield mysql_server.dsn(name)
    finally:
        mysql_server.drop_database(name)


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The Redis server for this session (see the module docstring)."""
    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.redis import EmbeddedRedis
    from dbsight.testing._servers import RedisServer

    url = _env(ENV_REDIS_URL)
    if url is not None:
        yield RedisServer(url)
        return
    embedded = EmbeddedRedis()
    try:
        embedded.start()
    except BinariesNotFoundError as exc:
        _missing_binaries(f"no Redis to test against: {exc} (or set {ENV_REDIS_URL})")
    try:
        yield RedisServer.from_embedded(embedded)
    finally:
        embedded.stop()


@pytest.fixture
def redis_prefix(redis_server: RedisServer) -> Iterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards."""
    prefix = f"dbsight_test:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        redis_server.delete_prefix(prefix)


@pytest.fixture
def redis_url(redis_server: RedisServer, redis_prefix: str) -> str:
    """URL of the Redis server; keep keys under ``redis_prefix`` so they are cleaned up."""
    return redis_server.url
