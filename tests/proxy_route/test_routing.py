"""Read/write splitting through `dbsight proxy` on a real primary with two streaming replicas.

A statement that reaches a replica while it writes fails there (a standby refuses writes), so
every write below succeeding through the proxy is itself proof that it ran on the primary;
reads prove where they ran with ``pg_is_in_recovery()``, and the proxy's routing counters
say why.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from typing import Any

import asyncpg
import psycopg
import pytest

from dbsight.embedded.postgres import pg_program
from dbsight.proxy._metrics import routing_decisions
from dbsight.testing._servers import ReplicatedDatabase
from dbsight.testing.proxy import REPLICA_PROBE as PROBE
from dbsight.testing.proxy import on_replica


def connect(proxy: Any, database: ReplicatedDatabase) -> psycopg.Connection[Any]:
    return psycopg.connect(proxy.dsn(database.primary_dsn), autocommit=True)


# Both pool modes route: in session mode the client keeps one primary connection for its
# session and borrows replica connections per read.
MODES = pytest.mark.parametrize("mode", ["transaction", "session"])


@pytest.fixture
def setup_schema(replicated2: ReplicatedDatabase) -> None:
    with psycopg.connect(replicated2.primary_dsn, autocommit=True) as conn:
        conn.execute(
            """
            DROP VIEW IF EXISTS numbered_again, numbered, named_again, named, scratchpad;
            DROP TABLE IF EXISTS items, audit, fast CASCADE;
            DROP SEQUENCE IF EXISTS seq;
            CREATE TABLE items (id int PRIMARY KEY, name text);
            INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
            CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
            CREATE SEQUENCE seq;
            CREATE OR REPLACE FUNCTION log_it(x text) RETURNS int LANGUAGE plpgsql AS
              $$BEGIN INSERT INTO audit (what) VALUES (x); RETURN 1; END$$;
            CREATE OR REPLACE FUNCTION twice(x int) RETURNS int LANGUAGE sql IMMUTABLE
              AS 'SELECT x * 2';
            CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE
              AS 'SELECT count(*) FROM items';
            CREATE OR REPLACE FUNCTION log_rows() RETURNS SETOF int LANGUAGE plpgsql AS
              $$BEGIN INSERT INTO audit (what) VALUES ('srf'); RETURN NEXT 1; END$$;
            CREATE OR REPLACE FUNCTION add_logged(int, int) RETURNS int LANGUAGE plpgsql AS
              $$BEGIN INSERT INTO audit (what) VALUES ('op'); RETURN $1 + $2; END$$;
            DROP OPERATOR IF EXISTS ## (int, int);
            CREATE OPERATOR ## (LEFTARG = int, RIGHTARG = int, FUNCTION = add_logged);
            DROP AGGREGATE IF EXISTS logged_sum(int);
            CREATE AGGREGATE logged_sum(int) (SFUNC = add_logged, STYPE = int, INITCOND = '0');
            CREATE OR REPLACE VIEW numbered AS SELECT id, nextval('seq') AS n FROM items;
            CREATE OR REPLACE VIEW numbered_again AS SELECT * FROM numbered;
            CREATE OR REPLACE VIEW named AS SELECT id, upper(name) AS name FROM items;
            CREATE OR REPLACE VIEW named_again AS SELECT * FROM named WHERE id < 10;
            CREATE UNLOGGED TABLE fast (id int, note text);
            INSERT INTO fast VALUES (1, 'not on a standby');
            CREATE VIEW scratchpad AS SELECT * FROM fast;
            CREATE OR REPLACE FUNCTION count_items() RETURNS bigint LANGUAGE sql
              AS 'SELECT count(*) FROM items';  -- left VOLATILE, though it only reads
            """
        )
    replicated2.wait_for_replay()


# Statements that write, lock or may change session state: each must run on the primary
# (on a replica it would fail, or leave state where the session cannot find it again).
PRIMARY_ONLY = [
    "SELECT nextval('seq')",
    "SELECT id FROM items WHERE id = 1 FOR UPDATE",
    "SELECT id FROM items WHERE id = 2 FOR SHARE",
    "WITH gone AS (DELETE FROM audit WHERE what = 'none' RETURNING *) SELECT count(*) FROM gone",
    "SELECT log_it('from a select')",
    "SELECT * INTO TEMP copied FROM items WHERE id < 3",
    "SELECT pg_advisory_lock(7), pg_advisory_unlock(7)",
    "UPDATE items SET name = name WHERE id = 3",
    "INSERT INTO audit (what) VALUES ('x')",
    "SET work_mem = '8MB'",
    "RESET work_mem",
    "CREATE TEMP TABLE scratch_t (x int)",
    "SELECT set_config('application_name', 'x', false)",
    "SELECT n FROM numbered WHERE id = 1",  # the view calls nextval
    "SELECT n FROM numbered_again WHERE id = 1",  # ... through another view
    "SELECT txid_current()",  # STABLE, yet it assigns a transaction id
    "SELECT pg_current_xact_id()",
    "SELECT * FROM log_rows()",  # a writing function in FROM, LATERAL, a subquery...
    "SELECT count(*) FROM items, LATERAL log_rows() AS x",
    "SELECT ARRAY(SELECT log_it('in an array'))",
    "SELECT 1 WHERE EXISTS (SELECT log_it('in exists'))",
    "SELECT id FROM items ORDER BY log_it('in order by') LIMIT 1",
    "SELECT CASE WHEN false THEN log_it('never') END",
    "VALUES (log_it('values'))",
    "SELECT 1 ## 2",  # an operator backed by a writing function
    "SELECT logged_sum(id) FROM items",  # an aggregate whose state function writes
    "SELECT 1 UNION SELECT nextval('seq')",
    "EXPLAIN ANALYZE INSERT INTO audit (what) VALUES ('explained')",
    "EXPLAIN ANALYZE SELECT log_it('explained')",
    "MERGE INTO audit a USING (SELECT 'm' AS w) s ON a.what = s.w"
    " WHEN NOT MATCHED THEN INSERT (what) VALUES (s.w)",
    "WITH u AS (UPDATE audit SET what = what WHERE false RETURNING *) TABLE u",
    "SELECT * FROM items WHERE id = 1 FOR NO KEY UPDATE",
    "SELECT * FROM items WHERE id = 1 FOR KEY SHARE SKIP LOCKED",
    "SELECT * FROM (SELECT * FROM items WHERE id = 4 FOR UPDATE) locked",
    "SELECT pg_notify('dbsight_channel', 'x')",
    "LISTEN dbsight_channel",
    "BEGIN READ ONLY ISOLATION LEVEL SERIALIZABLE; SELECT 1; COMMIT",  # a standby refuses it
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY; SELECT 1; COMMIT",
    "SELECT note FROM fast",  # unlogged: "cannot access ... unlogged relations during recovery"
    "SELECT count(*) FROM items JOIN scratchpad USING (id)",  # ... through a view
    "SHOW transaction_read_only",  # how drivers find the primary: 'off' is the answer
    "SELECT current_setting('transaction_read_only')",
    # an override vouches for functions, never for a statement that writes by its form
    "INSERT INTO audit (what) VALUES ('hinted') /* dbsight:replica */",
    "SELECT id FROM items WHERE id = 9 FOR UPDATE /* dbsight:replica */",
    "SELECT nextval('seq') /* dbsight:replica */",
]


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_reads_go_to_replicas_and_everything_else_to_the_primary(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as conn:
        assert on_replica(conn)
        assert conn.execute("SELECT name FROM items WHERE id = %s", (7,)).fetchone() == (
            "item 7",
        )
        assert on_replica(conn, f"{PROBE} AND twice(2) = 4")  # immutable
        assert on_replica(conn, f"{PROBE} AND item_count() = 50")  # stable
        assert not on_replica(conn, "SELECT pg_is_in_recovery()")  # volatile: the primary
        assert on_replica(conn, f"{PROBE} FROM named_again WHERE id = 1")  # views over rows
        for sql in PRIMARY_ONLY:
            before = routing_decisions["primary", "write"]
            if mode == "session":  # a session of its own: one with a temporary table is pinned
                with connect(proxy, replicated2) as own:
                    own.execute(sql)
            else:
                conn.execute(sql)  # on a replica: "cannot execute ... in a read-only transaction"
            assert routing_decisions["primary", "write"] == before + 1, sql
        with conn.transaction():  # SERIALIZABLE: a standby refuses it, even READ ONLY
            conn.execute("SET TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE")
            assert not on_replica(conn)
        # a transaction that starts with a SELECT stays on the primary to its end
        with conn.transaction():
            assert not on_replica(conn)
            conn.execute("INSERT INTO audit (what) VALUES ('in tx')")
            assert not on_replica(conn)


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_read_only_transactions_hints_and_the_session_role(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as conn:
        conn.read_only = True  # psycopg: BEGIN READ ONLY
        with conn.transaction():
            assert on_replica(conn)
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (50,)
            assert on_replica(conn)
        conn.read_only = False
        with conn.transaction():  # BEGIN; then a read: the primary, to the end
            assert not on_replica(conn)
        conn.execute("BEGIN")  # then SET TRANSACTION READ ONLY: the replica after all
        conn.execute("SET TRANSACTION READ ONLY")
        assert on_replica(conn)
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (50,)
        conn.execute("COMMIT")
        # a transaction's place is settled by its first statement after BEGIN and any SET
        # TRANSACTION
        conn.execute("BEGIN READ ONLY")
        conn.execute("SET TRANSACTION READ WRITE")  # a standby refuses this
        conn.execute("INSERT INTO audit (what) VALUES ('read write after all')")
        assert not on_replica(conn)
        conn.execute("COMMIT")
        conn.execute("START TRANSACTION READ ONLY")
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")  # ... and this
        assert not on_replica(conn)
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")  # taken back, yet a
        conn.execute("SET TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ")  # standby
        assert not on_replica(conn)  # would refuse the first SET
        conn.execute("COMMIT")
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SET TRANSACTION READ ONLY DEFERRABLE")
        assert on_replica(conn)
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        conn.execute("COMMIT")
        conn.execute("BEGIN READ ONLY")  # an empty transaction
        conn.execute("COMMIT")
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")  # then a write: the primary
        conn.execute("INSERT INTO audit (what) VALUES ('after a bare begin')")
        assert not on_replica(conn)
        conn.execute("ROLLBACK")
        assert not on_replica(conn, f"{PROBE} /* dbsight:primary */")
        counted = f"{PROBE} AND count_items() = 50"
        assert not on_replica(conn, counted)  # a VOLATILE function: the primary, unless...
        assert on_replica(conn, f"{counted} /* dbsight:replica */")  # ... the client vouches
        conn.execute("SET dbsight.role = primary")
        assert not on_replica(conn)
        conn.execute("SET dbsight.role = replica")
        assert on_replica(conn, counted)
        conn.execute("INSERT INTO audit (what) VALUES ('role replica')")  # still the primary
        assert conn.execute("SELECT nextval('seq') > 0").fetchone() == (True,)
        cur = conn.execute(f"{PROBE}, %s::int FROM items WHERE id = %s FOR UPDATE", (1, 2))
        assert cur.fetchone() == (False, 1)
        conn.execute("SET dbsight.role = auto")
        assert on_replica(conn)


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_read_your_writes_keeps_a_writer_on_the_primary_for_a_while(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(read_your_writes_s=1.0, pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as writer, connect(proxy, replicated2) as other:
        writer.execute("INSERT INTO items VALUES (1000, 'fresh')")
        assert writer.execute("SELECT name FROM items WHERE id = 1000").fetchone() == ("fresh",)
        assert not on_replica(writer)  # within the window: the primary
        assert on_replica(other)  # another session did not write
        time.sleep(1.1)
        assert on_replica(writer)


@MODES
def test_each_database_is_judged_by_its_own_catalog(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """The same function name may be STABLE in one database and write in another."""
    cluster = replicated2.cluster
    other = cluster.create_database()
    try:
        stable = "CREATE FUNCTION f() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1'"
        writing = (
            "CREATE TABLE t (x int); CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS"
            " $$BEGIN INSERT INTO t VALUES (1); RETURN 1; END$$"
        )
        for dsn, ddl in ((replicated2.primary_dsn, stable), (other.primary_dsn, writing)):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DROP FUNCTION IF EXISTS f()")
                conn.execute(ddl)
        cluster.wait_for_replay()
        proxy = routing_proxy(pool_mode=mode)
        proxy.wait_replicas_in_rotation(2)
        with connect(proxy, replicated2) as conn:
            assert on_replica(conn, f"{PROBE}, f()")
        with psycopg.connect(proxy.dsn(other.primary_dsn), autocommit=True) as conn:
            assert not on_replica(conn, f"{PROBE}, f()")  # it writes: the primary
            assert conn.execute("SELECT count(*) FROM t /* dbsight:primary */").fetchone() == (1,)
    finally:
        with psycopg.connect(replicated2.primary_dsn, autocommit=True) as conn:
            conn.execute("DROP FUNCTION IF EXISTS f()")
        cluster.drop_database(other.name)


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_what_a_client_sends_while_a_replica_reads_waits_for_its_own_judgement(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """A client that sends its next Query before the answer to a read comes back: that next
    Query is routed on its own, not relayed to the replica serving the read."""
    proxy = routing_proxy(pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as conn:
        raw = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            raw.settimeout(20)
            for sql in (f"{PROBE}, pg_sleep(0.3) /* dbsight:replica */",
                        "INSERT INTO audit (what) VALUES ('sent early')"):  # fmt: skip
                body = sql.encode() + b"\0"
                raw.sendall(b"Q" + (len(body) + 4).to_bytes(4, "big") + body)
                time.sleep(0.05)  # two reads of the proxy, the first unit still running
            answers = b""
            while answers.count(b"Z\x00\x00\x00\x05I") < 2:
                answers += raw.recv(65536)
        finally:
            raw.close()
        assert b"INSERT 0 1" in answers and b"\x00C25006" not in answers, answers
        seen = "SELECT count(*) FROM audit WHERE what = 'sent early' /* dbsight:primary */"
        assert conn.execute(seen).fetchone() == (1,)


@MODES
@pytest.mark.usefixtures("setup_schema")
async def test_what_starts_read_your_writes(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """Only what may change table data keeps a session's reads on the primary: not an asyncpg
    pool's reset between borrowers (advisory unlocks, CLOSE ALL, UNLISTEN, RESET ALL), a
    transaction that only reads, nextval or a row lock; a function that writes does."""
    proxy = routing_proxy(pool_mode=mode, read_your_writes_s=30.0)
    proxy.wait_replicas_in_rotation(2)
    dsn = proxy.dsn(replicated2.primary_dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        for _ in range(3):
            async with pool.acquire() as conn:  # reset when it goes back
                assert await conn.fetchval(PROBE) is True
    finally:
        await pool.close()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM items") == 50
        await conn.fetchval("SELECT nextval('seq')")
        async with conn.transaction():
            await conn.execute("SELECT * FROM items WHERE id = 1 FOR UPDATE")
        assert await conn.fetchval(PROBE) is True
        await conn.fetchval("SELECT log_it('writes')")
        assert await conn.fetchval(PROBE) is False  # the primary, for read_your_writes_s
    finally:
        await conn.close()


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_with_replicas_the_cache_is_filled_from_the_primary(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """A cacheable read the cache lacks goes to the primary (a replica's answer may miss a
    write that has returned); once cached, it is answered without a server."""
    proxy = routing_proxy(pool_mode=mode, cache=[{"table": "items", "ttl_s": 60}])
    proxy.wait_replicas_in_rotation(2)
    read = f"{PROBE}, name FROM items WHERE id = 3"
    fills = routing_decisions["primary", "cache_fill"]
    with connect(proxy, replicated2) as conn:
        assert conn.execute(read).fetchone() == (False, "item 3")  # from the primary ...
        assert conn.execute(read).fetchone() == (False, "item 3")  # ... and then the cache
        assert on_replica(conn)  # not cacheable: a replica
    assert routing_decisions["primary", "cache_fill"] == fills + 1


@MODES
@pytest.mark.usefixtures("setup_schema")
async def test_asyncpg_preparing_is_not_a_write(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """asyncpg prepares each new statement with Parse, Describe and a Flush (no Sync): that
    part goes where its statement may run, and starts no read-your-writes window."""
    proxy = routing_proxy(pool_mode=mode, read_your_writes_s=30.0)
    proxy.wait_replicas_in_rotation(2)
    conn = await asyncpg.connect(proxy.dsn(replicated2.primary_dsn))
    try:
        for i in range(5):  # a new statement each time: prepared, then executed
            assert await conn.fetchval(f"{PROBE} AND {i} = $1::int", i) is True
        assert await conn.fetchval("SELECT name FROM items WHERE id = $1", 3) == "item 3"
        await conn.execute("INSERT INTO audit (what) VALUES ('asyncpg')")
        assert await conn.fetchval(f"{PROBE} AND 5 = $1::int", 5) is False  # now the window
    finally:
        await conn.close()


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_extended_protocol_and_prepared_statements_are_routed_per_unit(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    dsn = proxy.dsn(replicated2.primary_dsn)
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        for i in range(1, 6):  # named prepared statements, prepared wherever they run
            assert conn.execute("SELECT name FROM items WHERE id = %s", (i,)).fetchone() == (
                f"item {i}",
            )
            conn.execute("INSERT INTO audit (what) VALUES (%s)", (f"p{i}",))
            assert conn.execute(f"{PROBE} FROM items WHERE id = %s", (i,)).fetchone() == (True,)
        with conn.pipeline():  # one Sync for all three: one unit, with a write in it
            read = conn.execute(PROBE)
            conn.execute("INSERT INTO audit (what) VALUES ('piped')")
            write = conn.execute(f"{PROBE} FROM nextval('seq')")
        assert read.fetchone() == (False,)  # the whole unit ran on the primary
        assert write.fetchone() == (False,)
        # (a read-only pipeline goes to a replica only when its Sync has arrived with it:
        # before that, the client may be waiting for answers, and the primary serves it)


def replica_states(proxy: Any) -> dict[str, bool]:
    return {
        s["name"]: bool(s.get("in_rotation"))
        for s in proxy.servers()
        if s["role"] == "replica"
    }


def wait_states(proxy: Any, wanted: dict[str, bool]) -> None:
    deadline = time.monotonic() + 30
    while {k: v for k, v in replica_states(proxy).items() if k in wanted} != wanted:
        assert time.monotonic() < deadline, replica_states(proxy)
        time.sleep(0.1)


@pytest.mark.usefixtures("setup_schema")
def test_a_lagging_replica_leaves_rotation_and_returns(
    routing_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    proxy = routing_proxy(max_replica_lag_bytes=1024)
    proxy.wait_replicas_in_rotation(2)
    lagging = replicated2.replica_dsns[0]
    with psycopg.connect(lagging, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            with psycopg.connect(replicated2.primary_dsn, autocommit=True) as primary:
                primary.execute("INSERT INTO audit (what) SELECT 'lag' FROM generate_series(1, 2000)")
            wait_states(proxy, {"replica1": False, "replica2": True})
            with connect(proxy, replicated2) as conn:  # reads carry on, on the other replica
                for _ in range(10):
                    assert on_replica(conn)
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    wait_states(proxy, {"replica1": True, "replica2": True})


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_reads_carry_on_while_a_replica_is_down(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(health_timeout_s=1.0, pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    replica = replicated2.cluster.replicas[1]
    replica.pause()  # a shutdown: the monitor sees it down, reads go to the other replica
    try:
        wait_states(proxy, {"replica2": False})
        with connect(proxy, replicated2) as conn:
            for i in range(20):
                assert conn.execute("SELECT name FROM items WHERE id = %s", (i + 1,)).fetchone()
    finally:
        replica.resume()
    wait_states(proxy, {"replica1": True, "replica2": True})


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_a_read_cancelled_by_wal_replay_is_asked_of_the_primary(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """A standby cancels a query that holds what replay needs (40001, "conflict with
    recovery") once max_standby_streaming_delay has passed; the proxy asks the primary."""
    replicas = replicated2.cluster.replicas
    for replica in replicas:
        replica.execute("ALTER SYSTEM SET max_standby_streaming_delay = '100ms'",
                        "SELECT pg_reload_conf()")  # fmt: skip
    try:
        proxy = routing_proxy(pool_mode=mode)
        proxy.wait_replicas_in_rotation(2)

        slow = "SELECT count(*), pg_sleep(3)::text FROM items /* dbsight:replica */"
        running = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE '%pg_sleep(3)%items%' AND pid <> pg_backend_pid()"
        )

        def alter_while_it_runs() -> None:  # an ACCESS EXCLUSIVE lock, replayed on replicas
            deadline = time.monotonic() + 20
            while not any(replica.execute(running) != "0" for replica in replicas):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            with psycopg.connect(replicated2.primary_dsn, autocommit=True) as primary:
                primary.execute("ALTER TABLE items ADD COLUMN extra int")

        before = routing_decisions["primary", "failover"]
        alter = threading.Thread(target=alter_while_it_runs)
        with connect(proxy, replicated2) as conn:
            alter.start()
            assert conn.execute(slow).fetchone() == (50, "")
        alter.join()
        assert routing_decisions["primary", "failover"] == before + 1
    finally:
        for replica in replicas:
            replica.execute("ALTER SYSTEM RESET max_standby_streaming_delay",
                            "SELECT pg_reload_conf()")  # fmt: skip


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_with_the_primary_down_reads_go_on_and_writes_fail_fast(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """The primary shuts down: reads carry on on the replicas; writes get 08006 (it cannot
    be reached) until its circuit breaker opens, then 57P03 at once, and the client's session
    goes on; once it is back (and the breaker's cool-down is over), writes succeed again."""
    proxy = routing_proxy(pool_mode=mode, breaker_cooldown_s=0.5)
    proxy.wait_replicas_in_rotation(2)
    primary = replicated2.cluster.primary
    codes = []
    with connect(proxy, replicated2) as conn:
        conn.execute("INSERT INTO audit (what) VALUES ('before')")
    primary.pause()
    try:
        for _ in range(6):
            with connect(proxy, replicated2) as conn:
                assert conn.execute("SELECT name FROM items WHERE id = 2").fetchone() == (
                    "item 2",
                )
                with pytest.raises(psycopg.OperationalError) as refused:
                    conn.execute("INSERT INTO audit (what) VALUES ('while down')")
                codes.append(refused.value.sqlstate)
                if refused.value.sqlstate == "57P03":  # refused by the proxy: still connected
                    assert on_replica(conn)
    finally:
        primary.resume()
    assert set(codes) <= {"08006", "57P03"} and codes[-1] == "57P03", codes
    deadline = time.monotonic() + 30
    with connect(proxy, replicated2) as conn:
        while True:
            try:
                conn.execute("INSERT INTO audit (what) VALUES ('back')")
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    replicated2.wait_for_replay()


@pytest.mark.usefixtures("setup_schema")
def test_a_catalog_lookup_the_down_primary_cannot_answer_goes_to_a_replica(
    routing_proxy: Any, replicated2: ReplicatedDatabase
) -> None:
    """A read of a relation the router has not looked up yet, with the primary gone before
    the health checks see it (one check a minute) and after DDL no replica is known to have
    replayed: the lookup is not left to the primary, which cannot answer it; a replica
    answers both it and the read, and the client's session goes on."""
    proxy = routing_proxy(health_interval_s=60.0)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as conn:
        conn.execute("ALTER TABLE audit ALTER COLUMN what SET DEFAULT ''")  # DDL seen
    primary = replicated2.cluster.primary
    primary.pause()
    try:
        with connect(proxy, replicated2) as conn:
            assert conn.execute("SELECT name FROM items WHERE id = 3").fetchone() == ("item 3",)
            assert on_replica(conn)
    finally:
        primary.resume()


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_read_your_writes_by_lsn_never_reads_before_the_write(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    proxy = routing_proxy(read_your_writes_lsn=True, health_interval_s=0.1, pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    with connect(proxy, replicated2) as conn:
        for n in range(5):
            conn.execute("INSERT INTO audit (what) VALUES (%s)", (f"lsn {n}",))
            deadline = time.monotonic() + 20
            while True:  # every read sees the write; once a replica has it, reads go there
                sql = f"{PROBE}, count(*) FROM audit WHERE what = 'lsn {n}'"
                replica, seen = conn.execute(sql).fetchone()
                assert seen == 1
                if replica:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.02)


@MODES
@pytest.mark.usefixtures("setup_schema")
def test_read_your_writes_by_time_waits_for_lagging_replicas(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """Replicas that lag, yet less than max_replica_lag_s, stay in rotation; after the window a
    writer's reads still go only to a replica known to have its write."""
    proxy = routing_proxy(
        pool_mode=mode, read_your_writes_s=0.3, max_replica_lag_s=3600, health_interval_s=0.1
    )
    proxy.wait_replicas_in_rotation(2)
    replicas = [psycopg.connect(dsn, autocommit=True) for dsn in replicated2.replica_dsns]
    for replica in replicas:
        replica.execute("SELECT pg_wal_replay_pause()")
    try:
        with connect(proxy, replicated2) as writer, connect(proxy, replicated2) as other:
            writer.execute("INSERT INTO audit (what) VALUES ('ryw')")
            time.sleep(0.6)  # past the window; the replicas still lack the write
            proxy.wait_replicas_in_rotation(2)
            seen = f"{PROBE}, count(*) FROM audit WHERE what = 'ryw'"
            for _ in range(5):
                assert writer.execute(seen).fetchone() == (False, 1)
                writer.execute("BEGIN")  # a read-only transaction: read-your-writes too
                writer.execute("SET TRANSACTION READ ONLY")
                assert writer.execute(seen).fetchone() == (False, 1)
                writer.execute("COMMIT")
            assert other.execute(seen).fetchone() == (True, 0)  # it wrote nothing
    finally:
        for replica in replicas:
            replica.execute("SELECT pg_wal_replay_resume()")
            replica.close()
    with connect(proxy, replicated2) as writer:
        writer.execute("INSERT INTO audit (what) VALUES ('ryw 2')")
        deadline = time.monotonic() + 20
        while not on_replica(writer):  # once replayed, the writer reads from replicas again
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sql = f"{PROBE}, count(*) FROM audit WHERE what LIKE 'ryw%'"
        assert writer.execute(sql).fetchone() == (True, 2)


@MODES
def test_stopping_a_replica_under_pgbench_load(
    routing_proxy: Any, replicated2: ReplicatedDatabase, mode: str
) -> None:
    """pgbench -S through the proxy while a replica is shut down: its clients see no error
    (a read the replica leaves unanswered is asked again of the primary), and once it has
    left rotation reads run on the other replica."""
    pgbench = pg_program("pgbench")
    subprocess.run([pgbench, "-i", "-s", "1", "-q", replicated2.primary_dsn],
                   capture_output=True, check=True, timeout=120)  # fmt: skip
    replicated2.wait_for_replay()
    proxy = routing_proxy(pool_mode=mode, health_interval_s=0.2, health_timeout_s=1.0)
    proxy.wait_replicas_in_rotation(2)
    dsn = proxy.dsn(replicated2.primary_dsn)

    def load(seconds: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [pgbench, "-n", "-S", "-c", "4", "-j", "2", "-T", str(seconds), dsn],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    during = load(4)  # its clients meet the outage before the monitor sees it
    replica = replicated2.cluster.replicas[1]
    try:
        time.sleep(1)
        replica.pause()
        wait_states(proxy, {"replica2": False})
        after, _ = load(3).communicate(timeout=20)
        assert "aborted" not in after and re.search(r"^tps = [1-9]", after, re.M), after
        out, _ = during.communicate(timeout=20)
        assert "aborted" not in out and "error" not in out.lower(), out
        assert re.search(r"^number of failed transactions: 0 ", out, re.M), out
    finally:
        if during.poll() is None:
            during.kill()
        replica.resume()
    wait_states(proxy, {"replica1": True, "replica2": True})



@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_replicas_get_the_clients_settings(
    routing_proxy: Any, replicated2: Any, mode: str
) -> None:
    """Reads a replica serves run with the client's startup settings (one pool per server,
    database and user: the settings go ahead of its unit), and in session mode with what its
    session SET too."""
    proxy = routing_proxy(pool_mode=mode)
    proxy.wait_replicas_in_rotation(2)
    dsn = proxy.dsn(replicated2.primary_dsn)
    tokyo = f"{dsn}{'&' if '?' in dsn else '?'}options=-c%20TimeZone%3DAsia%2FTokyo"
    with psycopg.connect(tokyo, autocommit=True) as conn:
        sql = f"{PROBE}, current_setting('TimeZone')"
        assert conn.execute(sql).fetchone() == (True, "Asia/Tokyo")
        if mode == "session":
            conn.execute("SET extra_float_digits = 1")
            sql = f"{PROBE}, current_setting('extra_float_digits')"
            assert conn.execute(sql).fetchone() == (True, "1")
