"""A private PostgreSQL cluster whose pg_hba.conf asks chosen roles for passwords.

The shared test clusters trust every local connection; tests of logins (the proxy's SCRAM,
md5 and cleartext exchanges, its backend pool) need a server that asks. Roles are given as
``{name: (password_encryption, pg_hba method, password)}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._servers import pg_url

# role -> (password_encryption, pg_hba.conf method, password)
Roles = Mapping[str, tuple[str, str, str]]


def create_role(dsn: str, name: str, password: str, encryption: str) -> None:
    """``CREATE ROLE name LOGIN PASSWORD ...``, hashed with ``encryption`` (md5 or scram)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET password_encryption = {}").format(sql.Literal(encryption)))
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )


@contextmanager
def password_cluster(roles: Roles, *, name: str = "dbsight-passwords") -> Iterator[Any]:
    """Start a cluster of its own, create ``roles`` and require their pg_hba methods over
    TCP from 127.0.0.1; yields the running `EmbeddedPostgres`, stopped and removed after."""
    import psycopg

    from dbsight.embedded import BinariesNotFoundError
    from dbsight.embedded.postgres import EmbeddedPostgres

    from .pytest_plugin import _missing_binaries

    cluster = EmbeddedPostgres(name=name)
    try:
        cluster.start()
    except BinariesNotFoundError as exc:
        _missing_binaries(f"no PostgreSQL server binaries for a cluster of our own: {exc}")
    try:
        dsn = pg_url(cluster.dsn("postgres"))
        for role, (encryption, _, password) in roles.items():
            create_role(dsn, role, password, encryption)
        hba = cluster.data_dir / "pg_hba.conf"
        lines = "".join(
            f"host all {role} 127.0.0.1/32 {method}\n" for role, (_, method, _) in roles.items()
        )
        hba.write_text(lines + hba.read_text())
        cluster.execute("SELECT pg_reload_conf()")
        probe = next(iter(roles))
        deadline = time.monotonic() + 30
        while True:  # until the new pg_hba.conf is in force: a wrong password is refused
            try:
                with psycopg.connect(dsn, user=probe, password="not the password"):
                    pass
            except psycopg.OperationalError:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("pg_hba.conf reload did not take effect")
            time.sleep(0.05)
        yield cluster
    finally:
        cluster.stop()
