"""pg_replicated: a private primary with a streaming hot-standby replica."""

from __future__ import annotations

import asyncpg
import psycopg
import psycopg.errors
import pytest

from dbsight.testing import PgCluster, PgClusterFactory, ReplicatedDatabase


def test_write_on_primary_read_on_replica(pg_replicated_db: ReplicatedDatabase) -> None:
    with psycopg.connect(pg_replicated_db.primary_dsn) as conn:
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, kind text)")
        conn.execute("INSERT INTO events VALUES (1, 'signup'), (2, 'login')")
    pg_replicated_db.wait_for_replay()
    (replica_dsn,) = pg_replicated_db.replica_dsns
    with psycopg.connect(replica_dsn) as conn:
        rows = conn.execute("SELECT id, kind FROM events ORDER BY id").fetchall()
    assert rows == [(1, "signup"), (2, "login")]


async def test_replica_reads_with_asyncpg(pg_replicated_db: ReplicatedDatabase) -> None:
    primary = await asyncpg.connect(pg_replicated_db.primary_dsn)
    try:
        await primary.execute("CREATE TABLE t AS SELECT generate_series(1, 100) AS n")
    finally:
        await primary.close()
    pg_replicated_db.wait_for_replay()
    replica = await asyncpg.connect(pg_replicated_db.replica_dsns[0])
    try:
        assert await replica.fetchval("SELECT sum(n) FROM t") == 5050
        assert await replica.fetchval("SELECT pg_is_in_recovery()") is True
    finally:
        await replica.close()


def test_replica_rejects_writes(pg_replicated_db: ReplicatedDatabase) -> None:
    with psycopg.connect(pg_replicated_db.primary_dsn) as conn:
        conn.execute("CREATE TABLE t (x int)")
    pg_replicated_db.wait_for_replay()
    with psycopg.connect(pg_replicated_db.replica_dsns[0]) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as excinfo:
            conn.execute("INSERT INTO t VALUES (1)")
    assert excinfo.value.sqlstate == "25006"
    assert "cannot execute INSERT in a read-only transaction" in str(excinfo.value)


async def test_replica_rejects_writes_asyncpg(pg_replicated_db: ReplicatedDatabase) -> None:
    replica = await asyncpg.connect(pg_replicated_db.replica_dsns[0])
    try:
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError) as excinfo:
            await replica.execute("CREATE TABLE nope (x int)")
    finally:
        await replica.close()
    assert excinfo.value.sqlstate == "25006"


def test_cluster_roles_and_streaming(pg_replicated: PgCluster) -> None:
    replica = pg_replicated.replicas[0]
    with psycopg.connect(pg_replicated.dsn()) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        senders = conn.execute(
            "SELECT state FROM pg_stat_replication WHERE application_name = %s",
            (replica.name,),
        ).fetchall()
    assert senders == [("streaming",)]
    with psycopg.connect(pg_replicated.replica_dsn(0)) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert replica.port != pg_replicated.primary.port


def test_replay_wait_sees_every_commit(pg_replicated_db: ReplicatedDatabase) -> None:
    """Commits are asynchronous on the embedded primary; wait_for_replay must still cover them."""
    with psycopg.connect(pg_replicated_db.primary_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE c (n int)")
        for n in range(50):
            conn.execute("INSERT INTO c VALUES (%s)", (n,))
            pg_replicated_db.wait_for_replay()
            with psycopg.connect(pg_replicated_db.replica_dsns[0]) as replica:
                assert replica.execute("SELECT count(*) FROM c").fetchone() == (n + 1,)


def test_two_replicas(pg_cluster_factory: PgClusterFactory) -> None:
    cluster = pg_cluster_factory(replicas=2)
    assert len(cluster.replicas) == 2
    assert pg_cluster_factory(replicas=2) is cluster  # shared within the session
    db = cluster.create_database()
    try:
        with psycopg.connect(db.primary_dsn) as conn:
            conn.execute("CREATE TABLE t AS SELECT 42 AS answer")
        db.wait_for_replay()
        for dsn in db.replica_dsns:
            with psycopg.connect(dsn) as conn:
                assert conn.execute("SELECT answer FROM t").fetchone() == (42,)
    finally:
        cluster.drop_database(db.name)
