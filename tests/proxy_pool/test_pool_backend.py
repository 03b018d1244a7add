"""``BackendConnection`` against a real PostgreSQL: login (trust, SCRAM-SHA-256, md5, cleartext),
server parameters, cancel key, its own statements, reset."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from pool_helpers import ServerView, spec_from_dsn, until

from dbsight.proxy import protocol as p
from dbsight.proxy._backend import BackendConnection, BackendSpec
from dbsight.proxy._backend_errors import BackendQueryError, BackendRefused, BackendUnavailable
from dbsight.testing import pg_url
from dbsight.testing._password_cluster import password_cluster


@pytest.fixture
async def conn(spec: BackendSpec) -> AsyncIterator[BackendConnection]:
    connection = await BackendConnection.connect(spec)
    yield connection
    await connection.close()


async def scalar(conn: BackendConnection, query: str) -> str | None:
    (result,) = await conn.execute(query)
    return result.rows[0][0]


# ------------------------------------------------------------------ login, trust


async def test_login_collects_parameters_and_key_data(spec: BackendSpec) -> None:
    spec = dataclasses.replace(
        spec, application_name="pool-test", parameters={"statement_timeout": "12345"}
    )
    conn = await BackendConnection.connect(spec)
    try:
        assert conn.state.transaction_status is p.TransactionStatus.IDLE and conn.state.at_rest
        assert conn.parameters["application_name"] == "pool-test"
        assert conn.parameters["server_encoding"] == "UTF8"
        assert conn.parameters["server_version"]
        assert conn.key.pid == int(await scalar(conn, "SELECT pg_backend_pid()") or 0)
        assert len(conn.key.secret_key) >= 4
        assert await scalar(conn, "SHOW statement_timeout") == "12345ms"
        assert await scalar(conn, "SELECT current_database()") == spec.database
        assert conn.created_at <= conn.last_used_at and conn.usable and conn.resettable
    finally:
        await conn.close()
    assert conn.closed and not conn.usable


async def test_unknown_database_is_refused_with_the_servers_sqlstate(spec: BackendSpec) -> None:
    with pytest.raises(BackendRefused) as info:
        await BackendConnection.connect(dataclasses.replace(spec, database="dbsight_no_such_db"))
    assert info.value.sqlstate == "3D000"
    assert "dbsight_no_such_db" in info.value.message
    assert not info.value.transient


async def test_unreachable_server_is_08006(spec: BackendSpec, closed_port: int) -> None:
    with pytest.raises(BackendUnavailable) as info:
        await BackendConnection.connect(dataclasses.replace(spec, port=closed_port))
    assert info.value.sqlstate == "08006"
    assert f"127.0.0.1:{closed_port} is unreachable" in info.value.message
    response = p.BackendParser()
    response.feed(info.value.error_response())
    error = response.next_message()
    assert isinstance(error, p.ErrorResponse) and error.sqlstate == "08006"


# ------------------------------------------------------------------ login with passwords

SCRAM_PASSWORD = "p\u00e4ss w\u00f6rd"
HBA_ROLES = {  # role: (password_encryption, pg_hba method, password)
    "dbsight_pool_scram": ("scram-sha-256", "scram-sha-256", SCRAM_PASSWORD),
    "dbsight_pool_md5": ("md5", "md5", "md5 secret"),
    "dbsight_pool_cleartext": ("scram-sha-256", "password", "clear text"),
}


@pytest.fixture(scope="module")
def hba_dsn() -> Iterator[str]:
    """A private cluster whose pg_hba.conf demands passwords from the HBA_ROLES (the shared
    test clusters trust everyone)."""
    with password_cluster(HBA_ROLES, name="dbsight-pool-auth-test") as cluster:
        yield pg_url(cluster.dsn("postgres"))


@pytest.mark.parametrize("role", list(HBA_ROLES))
async def test_password_logins(hba_dsn: str, role: str) -> None:
    spec = dataclasses.replace(spec_from_dsn(hba_dsn), user=role, password=HBA_ROLES[role][2])
    conn = await BackendConnection.connect(spec)
    try:
        assert await scalar(conn, "SELECT current_user") == role
        assert conn.parameters["session_authorization"] == role
    finally:
        await conn.close()


@pytest.mark.parametrize("role", list(HBA_ROLES))
async def test_wrong_password_carries_28p01(hba_dsn: str, role: str) -> None:
    spec = dataclasses.replace(spec_from_dsn(hba_dsn), user=role, password="not it")
    with pytest.raises(BackendRefused) as info:
        await BackendConnection.connect(spec)
    assert info.value.sqlstate == "28P01"
    assert info.value.message == f'password authentication failed for user "{role}"'


async def test_missing_password_is_refused_without_sending_one(hba_dsn: str) -> None:
    spec = dataclasses.replace(spec_from_dsn(hba_dsn), user="dbsight_pool_scram", password=None)
    with pytest.raises(BackendRefused) as info:
        await BackendConnection.connect(spec)
    assert info.value.sqlstate == "28000" and "none is configured" in info.value.message


# ------------------------------------------------------------------ statements, cancel


async def test_failed_statement_leaves_the_connection_usable(conn: BackendConnection) -> None:
    with pytest.raises(BackendQueryError) as info:
        await conn.execute("SELECT 1/0")
    assert info.value.sqlstate == "22012"
    assert conn.state.at_rest and conn.usable
    results = await conn.execute("SELECT 1; SELECT 'x', NULL")
    assert [r.tag for r in results] == ["SELECT 1", "SELECT 1"]
    assert results[1].rows == (("x", None),)


async def test_cancel_with_the_key_data_stops_a_running_statement(
    conn: BackendConnection, server: ServerView
) -> None:
    running = asyncio.create_task(conn.execute("SELECT pg_sleep(60)"))
    deadline = time.monotonic() + 20
    while not await server.fetch(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' AND query LIKE %s",
        conn.pid,
        "%pg_sleep%",
    ):
        assert time.monotonic() < deadline and not running.done()
        await asyncio.sleep(0.02)
    await conn.cancel()
    with pytest.raises(BackendQueryError) as info:
        await asyncio.wait_for(running, 20)
    assert info.value.sqlstate == "57014"  # query_canceled
    assert await scalar(conn, "SELECT 42") == "42"


async def test_terminated_server_process_breaks_the_connection(
    conn: BackendConnection, server: ServerView
) -> None:
    await server.terminate(conn.pid)
    with pytest.raises(BackendUnavailable) as info:
        await conn.execute("SELECT 1")
    assert info.value.sqlstate == "08006"
    assert conn.broken and not conn.usable and not conn.resettable


# ------------------------------------------------------------------ prepared statements


async def prepared_on_server(conn: BackendConnection) -> dict[str, str]:
    (result,) = await conn.execute("SELECT name, statement FROM pg_prepared_statements")
    return {name or "": text or "" for name, text in result.rows}


async def test_reset_rolls_back_discards_and_forgets_prepared(
    conn: BackendConnection, server: ServerView
) -> None:
    await conn.execute("CREATE TABLE kept (x int)")
    await conn.execute("PREPARE s1 AS SELECT 1")
    conn.prepared["s1"] = "SELECT 1"  # as the session layer records what it prepared
    await conn.execute("BEGIN; INSERT INTO kept VALUES (1); SET LOCAL work_mem = '2MB'")
    assert conn.state.transaction_status is p.TransactionStatus.IN_TRANSACTION
    await conn.reset()
    assert conn.prepared == {} and conn.state.at_rest
    assert await prepared_on_server(conn) == {}
    assert await server.fetch("SELECT count(*) FROM kept") == [(0,)]

    await conn.execute("BEGIN")
    with pytest.raises(BackendQueryError):
        await conn.execute("SELECT 1/0")
    assert conn.state.transaction_status is p.TransactionStatus.FAILED
    await conn.reset()
    assert conn.state.transaction_status is p.TransactionStatus.IDLE


async def test_reset_refuses_a_connection_left_mid_request(conn: BackendConnection) -> None:
    parse = p.Parse("", "SELECT 1")
    conn.state.client_message(parse)  # as if a client's pipeline had been cut before its Sync
    conn.writer.write(p.encode(parse))
    assert not conn.resettable
    with pytest.raises(BackendUnavailable):
        await conn.reset()
    assert conn.broken


async def test_close_ends_the_server_process(spec: BackendSpec, server: ServerView) -> None:
    conn = await BackendConnection.connect(spec)
    assert await server.alive(conn.pid)
    await conn.close()
    await server.wait_gone(conn.pid)
    await until(lambda: conn.writer.is_closing())
