"""Server handles behind the pytest fixtures: an embedded server or one named by a DSN.

Administration (creating and dropping the per-test databases, deleting keys) goes through
the embedded server's own tools when we started the server, and through the Python client
(psycopg, pymysql, redis-py; imported lazily) for a server given by an environment variable.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from dbsight.embedded.mariadb import EmbeddedMariaDB
    from dbsight.embedded.postgres import EmbeddedPostgres
    from dbsight.embedded.redis import EmbeddedRedis

__all__ = [
    "MysqlServer",
    "PgCluster",
    "PgClusterFactory",
    "PgServer",
    "RedisServer",
    "ReplicatedDatabase",
    "mysql_connect_kwargs",
    "pg_url",
    "unique_name",
]

TEST_PREFIX = "dbsight_test_"


def unique_name(prefix: str = TEST_PREFIX) -> str:
    """A fresh, valid identifier such as ``dbsight_test_3f9a1c0b2d4e``."""
    return f"{prefix}{secrets.token_hex(6)}"


# --------------------------------------------------------------------------- PostgreSQL


def pg_url(dsn: str, dbname: str | None = None) -> str:
    """``dsn`` (URL or ``key=value`` conninfo) as a ``postgresql://`` URL, optionally for
    another database. URLs work with psycopg, asyncpg and SQLAlchemy alike."""
    if re.match(r"^postgres(ql)?://", dsn):
        parts = urlsplit(dsn)
        path = parts.path if dbname is None else "/" + quote(dbname, safe="")
        return urlunsplit(("postgresql", parts.netloc, path, parts.query, parts.fragment))
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is a test dependency
        raise ValueError(f"cannot parse key=value DSN {dsn!r} without psycopg; use a URL") from None
    params: dict[str, Any] = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    user = params.pop("user", "")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", "")
    name = dbname if dbname is not None else params.pop("dbname", "")
    params.pop("dbname", None)
    netloc = ""
    if user:
        netloc = quote(str(user), safe="")
        if password is not None:
            netloc += ":" + quote(str(password), safe="")
        netloc += "@"
    if host and not str(host).startswith("/"):
        netloc += str(host)
    elif host:
        params["host"] = host
    if port:
        netloc += f":{port}"
    query = urlencode({k: str(v) for k, v in params.items()})
    return urlunsplit(("postgresql", netloc, "/" + quote(str(name), safe=""), query, ""))


def _pg_quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgServer:
    """The PostgreSQL server tests run against (value of the ``pg_server`` fixture)."""

    def __init__(self, admin_dsn: str, embedded: EmbeddedPostgres | None = None) -> None:
        self.admin_dsn = pg_url(admin_dsn)
        self.embedded = embedded
        self._version_num = 0  # server_version_num of an external server, once checked

    @classmethod
    def from_embedded(cls, embedded: EmbeddedPostgres) -> PgServer:
        return cls(embedded.dsn("postgres"), embedded)

    @classmethod
    def from_dsn(cls, dsn: str) -> PgServer:
        server = cls(dsn)
        row = server._fetchone(
            "SELECT rolsuper, current_setting('server_version_num')::int "
            "FROM pg_roles WHERE rolname = current_user"
        )
        if not row or not row[0]:
            raise RuntimeError(
                f"DBSIGHT_TEST_PG_DSN must connect as a superuser (it creates and force-drops "
                f"a database per test): {server.admin_dsn}"
            )
        server._version_num = int(row[1])
        return server

    def __repr__(self) -> str:
        kind = "embedded" if self.embedded is not None else "external"
        return f"<PgServer {kind} {self.admin_dsn}>"

    def dsn(self, dbname: str) -> str:
        return pg_url(self.admin_dsn, dbname)

    def _fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchone() if cur.description is not None else None

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (from template0); returns its name."""
        name = name or unique_name()
        if self.embedded is not None:
            self.embedded.create_database(name)
        else:
            self._fetchone(f"CREATE DATABASE {_pg_quote_ident(name)} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        if self.embedded is not None:
            self.embedded.drop_database(name)
        elif not self._version_num or self._version_num >= 130000:
            self._fetchone(f"DROP DATABASE IF EXISTS {_pg_quote_ident(name)} WITH (FORCE)")
        else:
            self._fetchone(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            self._fetchone(f"DROP DATABASE IF EXISTS {_pg_quote_ident(name)}")

    def database_exists(self, name: str) -> bool:
        if self.embedded is not None:
            escaped = name.replace("'", "''")
            return self.embedded.execute(
                f"SELECT count(*) FROM pg_database WHERE datname = '{escaped}'"
            ) == "1"
        return self._fetchone("SELECT 1 FROM pg_database WHERE datname = %s", (name,)) is not None

    @contextlib.contextmanager
    def temporary_database(self) -> Iterator[str]:
        """A fresh database for the duration of the block; yields its DSN."""
        name = self.create_database()
        try:
            yield self.dsn(name)
        finally:
            self.drop_database(name)


@dataclass
class ReplicatedDatabase:
    """A database on a replicated cluster: where to write, where to read."""

    name: str
    primary_dsn: str
    replica_dsns: list[str]
    cluster: PgCluster = field(repr=False)

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Block until every replica has replayed everything committed on the primary."""
        self.cluster.wait_for_replay(timeout=timeout)


class PgCluster:
    """A private primary with streaming hot-standby replicas."""

    def __init__(self, primary: EmbeddedPostgres) -> None:
        self.primary = primary

    @classmethod
    def start(cls, replicas: int = 1, *, name: str = "dbsight-test") -> PgCluster:
        from dbsight.embedded.postgres import EmbeddedPostgres

        primary = EmbeddedPostgres(name=name).start()
        try:
            for _ in range(replicas):
                primary.add_replica()
        except BaseException:
            primary.stop()
            raise
        return cls(primary)

    @property
    def replicas(self) -> list[EmbeddedPostgres]:
        return self.primary.replicas

    def __repr__(self) -> str:
        return f"<PgCluster {self.primary!r} replicas={self.replicas!r}>"

    def dsn(self, dbname: str = "postgres") -> str:
        """DSN of ``dbname`` on the primary."""
        return self.primary.dsn(dbname)

    def replica_dsn(self, index: int = 0, dbname: str = "postgres") -> str:
        return self.replicas[index].dsn(dbname)

    def replica_dsns(self, dbname: str = "postgres") -> list[str]:
        return [replica.dsn(dbname) for replica in self.replicas]

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        self.primary.wait_for_replay(timeout=timeout)

    def create_database(self, name: str | None = None) -> ReplicatedDatabase:
        """Create a database on the primary and wait until the replicas have it too."""
        name = name or unique_name()
        self.primary.create_database(name)
        self.wait_for_replay()
        return ReplicatedDatabase(name, self.dsn(name), self.replica_dsns(name), self)

    def drop_database(self, name: str) -> None:
        self.primary.drop_database(name)

    def stop(self) -> None:
        self.primary.stop()


class PgClusterFactory:
    """``pg_cluster_factory(replicas=2)`` -> a :class:`PgCluster`, stopped at session end.

    Clusters are shared per replica count within the session unless ``fresh=True``.
    """

    def __init__(self) -> None:
        self._shared: dict[int, PgCluster] = {}
        self._all: list[PgCluster] = []

    def __call__(self, replicas: int = 1, *, fresh: bool = False) -> PgCluster:
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        if not fresh and replicas in self._shared:
            return self._shared[replicas]
        cluster = PgCluster.start(replicas, name=f"dbsight-test-r{replicas}")
        self._all.append(cluster)
        if not fresh:
            self._shared[replicas] = cluster
        return cluster

    def close(self) -> None:
        errors: list[BaseException] = []
        for cluster in reversed(self._all):
            try:
                cluster.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self._all.clear()
        self._shared.clear()
        if errors:
            raise errors[0]


# --------------------------------------------------------------------------- MariaDB


def mysql_connect_kwargs(dsn: str) -> dict[str, Any]:
    """``mysql://user:password@host:port/db?unix_socket=...`` as ``pymysql.connect`` kwargs."""
    parts = urlsplit(dsn)
    if parts.scheme.split("+")[0] not in ("mysql", "mariadb"):
        raise ValueError(f"not a mysql:// or mariadb:// URL: {dsn!r}")
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
    }
    database = unquote(parts.path.lstrip("/"))
    if database:
        kwargs["database"] = database
    for key, value in parse_qsl(parts.query):
        kwargs[key] = int(value) if value.isdigit() else value
    return kwargs


def _mysql_quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MysqlServer:
    """The MariaDB/MySQL server tests run against (value of the ``mysql_server`` fixture)."""

    def __init__(self, admin_dsn: str, embedded: EmbeddedMariaDB | None = None) -> None:
        self.admin_dsn = admin_dsn
        self.embedded = embedded

    @classmethod
    def from_embedded(cls, embedded: EmbeddedMariaDB) -> MysqlServer:
        return cls(embedded.dsn(""), embedded)

    @classmethod
    def from_dsn(cls, dsn: str) -> MysqlServer:
        server = cls(dsn)
        server._run("SELECT 1")  # fail early and clearly if it is unreachable
        return server

    def __repr__(self) -> str:
        kind = "embedded" if self.embedded is not None else "external"
        return f"<MysqlServer {kind} {self.admin_dsn}>"

    def dsn(self, dbname: str) -> str:
        parts = urlsplit(self.admin_dsn)
        path = "/" + quote(dbname, safe="")
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        return mysql_connect_kwargs(self.dsn(dbname) if dbname else self.admin_dsn)

    def _run(self, *statements: tuple[str, tuple[Any, ...]] | str) -> list[tuple[Any, ...]]:
        import pymysql

        kwargs = self.connect_kwargs()
        kwargs.pop("database", None)
        conn = pymysql.connect(**kwargs, autocommit=True, connect_timeout=10)
        try:
            rows: list[tuple[Any, ...]] = []
            with conn.cursor() as cur:
                for statement in statements:
                    sql, params = (statement, ()) if isinstance(statement, str) else statement
                    cur.execute(sql, params or None)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def create_database(self, name: str | None = None) -> str:
        name = name or unique_name()
        if self.embedded is not None:
            self.embedded.create_database(name)
        else:
            self._run(f"CREATE DATABASE {_mysql_quote_ident(name)} CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        if self.embedded is not None:
            self.embedded.drop_database(name)
            return
        sessions = self._run(
            (
                "SELECT id FROM information_schema.processlist WHERE db = %s "
                "AND id <> CONNECTION_ID()",
                (name,),
            )
        )
        for (session_id,) in sessions:
            with contextlib.suppress(Exception):
                self._run(f"KILL {int(session_id)}")
        self._run(
            "SET SESSION lock_wait_timeout = 30",
            f"DROP DATABASE IF EXISTS {_mysql_quote_ident(name)}",
        )

    def database_exists(self, name: str) -> bool:
        if self.embedded is not None:
            escaped = name.replace("\\", "\\\\").replace("'", "\\'")
            return self.embedded.execute(
                f"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{escaped}'"
            ) == "1"
        rows = self._run(
            ("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))
        )
        return bool(rows)


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """The Redis server tests run against (value of the ``redis_server`` fixture)."""

    def __init__(self, url: str, embedded: EmbeddedRedis | None = None) -> None:
        self.url = url
        self.embedded = embedded

    @classmethod
    def from_embedded(cls, embedded: EmbeddedRedis) -> RedisServer:
        return cls(embedded.url(), embedded)

    def __repr__(self) -> str:
        kind = "embedded" if self.embedded is not None else "external"
        return f"<RedisServer {kind} {self.url}>"

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=10)

    def keys(self, prefix: str) -> list[bytes]:
        client = self.client()
        try:
            return list(client.scan_iter(match=_glob_escape(prefix) + "*", count=1000))
        finally:
            client.close()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; returns how many were deleted."""
        if not prefix:
            raise ValueError("refusing to delete keys with an empty prefix")
        client = self.client()
        deleted = 0
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(client.delete(*batch))
                    batch.clear()
            if batch:
                deleted += int(client.delete(*batch))
        finally:
            client.close()
        return deleted


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
