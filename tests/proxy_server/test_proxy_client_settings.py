"""Clients with different startup settings through one pool of `dbsight proxy`.

psql, asyncpg and psycopg send different startup parameters (application_name,
client_encoding, options...). They share one pool per database and user; each client's
settings are given to whichever server connection serves it, and what it is told
(ParameterStatus) matches what it gets.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import psycopg
import pytest
from test_proxy_pooled import metric

TOKYO = "options=" + quote("-c TimeZone=Asia/Tokyo -c DateStyle=SQL,DMY")


def with_query(dsn: str, query: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}{query}"


class Psql:
    """The real psql binary, connected for the whole test, fed one command at a time."""

    def __init__(self, dsn: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            ["psql", "-X", "-A", "-t", "-q", dsn],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **env},
        )

    def run(self, sql: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{sql}\n\\echo __end__\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self.proc.stdout.readline()) != "__end__\n":
            assert line, "psql ended"
            lines.append(line.rstrip("\n"))
        return lines

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def psql_factory() -> Iterator[Any]:
    made: list[Psql] = []

    def make(dsn: str, **env: str) -> Psql:
        made.append(Psql(dsn, **env))
        return made[-1]

    yield make
    for session in made:
        session.close()


async def test_psql_asyncpg_and_psycopg_share_one_pool_each_with_its_settings(
    proxy_factory: Any, pg_dsn: str, psql_factory: Any
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=2, admin="127.0.0.1:0")
    dsn = proxy.dsn(pg_dsn)
    parts = urlsplit(pg_dsn)
    name = f"{parts.username}@{parts.path.lstrip('/')}"
    psql = psql_factory(dsn, PGOPTIONS="-c IntervalStyle=sql_standard")
    apg = await asyncpg.connect(dsn)
    psy = await psycopg.AsyncConnection.connect(
        with_query(dsn, TOKYO + "&application_name=psy"), autocommit=True
    )
    try:
        direct = await asyncpg.connect(pg_dsn)  # what asyncpg's defaults give on the server
        defaults = [await direct.fetchval(f"SHOW {s}") for s in ("TimeZone", "DateStyle")]
        await direct.close()
        shows = "SHOW TimeZone; SHOW DateStyle; SHOW IntervalStyle; SHOW application_name;"

        async def psy_shows() -> list[str]:
            cur = await psy.execute(
                "SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
                " current_setting('IntervalStyle'), current_setting('application_name')"
            )
            return [str(v) for v in await cur.fetchone() or ()]

        apg_shows = (
            "SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
            " current_setting('IntervalStyle'), current_setting('application_name')"
        )
        pids: dict[str, set[int]] = {"psql": set(), "asyncpg": set(), "psycopg": set()}
        for _ in range(4):  # one after the other: mostly on the same server connection
            assert psql.run(shows) == ["UTC", "ISO, MDY", "sql_standard", "psql"]
            pids["psql"].add(int(psql.run("SELECT pg_backend_pid();")[0]))
            assert list(await apg.fetchrow(apg_shows)) == [*defaults, "postgres", ""]
            pids["asyncpg"].add(await apg.fetchval("SELECT pg_backend_pid()"))
            assert await psy_shows() == ["Asia/Tokyo", "SQL, DMY", "postgres", "psy"]
            cur = await psy.execute("SELECT pg_backend_pid()")
            pids["psycopg"].add(int((await cur.fetchone() or (0,))[0]))
            async with psy.transaction():  # holds one connection: the others get the second
                assert await psy_shows() == ["Asia/Tokyo", "SQL, DMY", "postgres", "psy"]
                assert psql.run("SHOW TimeZone;") == ["UTC"]
                assert list(await apg.fetchrow(apg_shows)) == [*defaults, "postgres", ""]
        assert pids["psql"] & pids["asyncpg"] & pids["psycopg"], pids  # connections shared
        assert len(set.union(*pids.values())) <= 2

        # what each was told at login is what it gets
        assert psy.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert psy.info.parameter_status("DateStyle") == "SQL, DMY"
        assert psy.info.parameter_status("application_name") == "psy"
        assert psy.info.parameter_status("client_encoding") == "UTF8"
        settings = apg.get_settings()
        assert [settings.TimeZone, settings.DateStyle] == defaults
        assert settings.client_encoding == "UTF8"

        admin = f"http://127.0.0.1:{proxy.server.admin_port}"
        async with httpx.AsyncClient(base_url=admin) as http:
            (pool,) = (await http.get("/stats/pools")).json()["pools"]
            exposition = (await http.get("/metrics")).text
        assert (pool["name"], pool["max_size"]) == (name, 2)
        assert pool["size"] <= 2
        assert metric(exposition, "proxy_pool_max_size", pool=name) == 2
        assert f'pool="proxy:{name}"' in exposition
        assert f'pool="proxy:{name}-2"' not in exposition
    finally:
        await apg.close()
        await psy.close()


async def test_a_set_of_a_reported_setting_follows_the_client(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """SET TimeZone (or DateStyle, application_name...), which the client is told about, is
    kept from one transaction to the next, whichever connection runs it; RESET and RESET ALL
    bring the client's startup value back, and tell it so."""
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    with psycopg.connect(with_query(dsn, TOKYO), autocommit=True) as a, \
            psycopg.connect(dsn, autocommit=True) as b:
        a.execute("SET TimeZone = 'America/Lima'")
        assert a.info.parameter_status("TimeZone") == "America/Lima"
        assert b.execute("SHOW TimeZone").fetchone() == ("UTC",)  # same server connection
        assert a.execute("SHOW TimeZone").fetchone() == ("America/Lima",)
        a.execute("SET application_name = 'renamed'")
        assert b.execute("SHOW application_name").fetchone() == ("",)
        assert a.execute("SHOW application_name").fetchone() == ("renamed",)
        a.execute("RESET TimeZone")  # back to its startup value, not the pool's
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert a.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
        a.execute("SET DateStyle = 'German'")
        a.execute("RESET ALL")
        assert a.info.parameter_status("DateStyle") == "SQL, DMY"
        assert a.info.parameter_status("application_name") == ""
        assert a.execute("SHOW DateStyle").fetchone() == ("SQL, DMY",)
        assert b.execute("SHOW DateStyle").fetchone() == ("ISO, MDY",)
        with a.transaction():  # undone by the ROLLBACK, told by the server
            a.execute("SET TimeZone = 'Europe/Oslo'")
            raise psycopg.Rollback()
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert a.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)


def test_a_commented_set_is_read_like_any_other(proxy_factory: Any, pg_dsn: str) -> None:
    """A SET after a comment (an ORM's or sqlcommenter's tag, a ``--`` note) follows the
    client, and one transaction pooling will lose is warned about, as without the comment."""
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    with psycopg.connect(dsn, autocommit=True) as a, psycopg.connect(dsn, autocommit=True) as b:
        notices: list[tuple[str | None, ...]] = []
        a.add_notice_handler(lambda d: notices.append(told(d)))
        a.execute("/* app='billing' */ SET TimeZone = 'America/Lima'")
        assert a.info.parameter_status("TimeZone") == "America/Lima"
        assert b.execute("SHOW TimeZone").fetchone() == ("UTC",)  # same server connection
        assert a.execute("SHOW TimeZone").fetchone() == ("America/Lima",)
        a.execute("-- a note\n/* and a tag */ RESET TimeZone")
        assert a.execute("SHOW TimeZone").fetchone() == ("UTC",)
        assert notices == []
        a.execute("/* app='billing' */ SET work_mem = '8MB'")
        ((severity, sqlstate, _, _),) = notices
        assert (severity, sqlstate) == ("WARNING", "01000")


async def test_an_asyncpg_pool_keeps_its_server_settings_across_releases(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """asyncpg resets a connection it gets back with RESET ALL: its server_settings are its
    startup values and must survive that, as they do on the server itself."""
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    pool = await asyncpg.create_pool(
        proxy.dsn(pg_dsn), min_size=2, max_size=2,
        server_settings={"TimeZone": "Asia/Tokyo", "application_name": "apg-pool",
                         "search_path": "public, pg_catalog"},
    )
    other = await asyncpg.connect(proxy.dsn(pg_dsn))
    try:
        for _ in range(3):
            async with pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT current_setting('TimeZone'), current_setting('application_name'),"
                    " current_setting('search_path')"
                )
                assert tuple(row) == ("Asia/Tokyo", "apg-pool", "public, pg_catalog")
                assert conn.get_settings().TimeZone == "Asia/Tokyo"
            assert await other.fetchval("SHOW TimeZone") == "UTC"
    finally:
        await other.close()
        await pool.close()


def test_startup_settings_the_server_refuses_refuse_the_login(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    bad = with_query(dsn, "options=" + quote("-c TimeZone=Nowhere/Special"))
    with pytest.raises(psycopg.OperationalError, match='invalid value for parameter "TimeZone"'):
        psycopg.connect(bad)
    with pytest.raises(psycopg.OperationalError, match="unsupported startup option"):
        psycopg.connect(with_query(dsn, "options=" + quote("-d 5")))
    with pytest.raises(psycopg.OperationalError, match='invalid list syntax in parameter'):
        psycopg.connect(with_query(dsn, "options=" + quote("-c search_path=a,")))
    with psycopg.connect(
        with_query(dsn, "options=" + quote(r'-c search_path=Plain,"Mixed\ Case",public')),
        autocommit=True,
    ) as conn:  # a list of names means what it means on the server
        conn.execute('CREATE SCHEMA plain; CREATE SCHEMA "Mixed Case"')
        row = conn.execute("SELECT current_schemas(false)").fetchone()
        assert row == (["plain", "Mixed Case", "public"],)


def told(diagnostic: psycopg.errors.Diagnostic) -> tuple[str | None, ...]:
    """What a notice said (psycopg's Diagnostic is valid only inside the handler)."""
    d = diagnostic
    return d.severity, d.sqlstate, d.message_primary, d.message_hint


def test_a_session_setting_transaction_pooling_will_lose_is_warned_about_once(
    proxy_factory: Any, pg_dsn: str, psql_factory: Any
) -> None:
    """A SET outside a transaction block succeeds and is gone at the next transaction: the
    client gets a WARNING (once per session), through its notice handlers. SET LOCAL, a SET
    inside a transaction block, set_config(..., true) and settings the proxy carries over
    (TimeZone...) get none."""
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1)
    dsn = proxy.dsn(pg_dsn)
    with psycopg.connect(dsn, autocommit=True) as quiet:
        notices: list[tuple[str | None, ...]] = []
        quiet.add_notice_handler(lambda d: notices.append(told(d)))
        default = quiet.execute("SHOW work_mem").fetchone()
        quiet.execute("SET TimeZone = 'Asia/Tokyo'")  # carried to the next transactions
        with quiet.transaction():
            quiet.execute("SET LOCAL work_mem = '8MB'")
            quiet.execute("SET statement_timeout = '5s'")  # in a transaction block
            quiet.execute("SELECT set_config('app.tenant', '7', true)")
        quiet.execute("SELECT set_config('work_mem', '9MB', true)")
        quiet.execute("BEGIN; SET work_mem = '10MB'; COMMIT")
        quiet.execute("RESET work_mem")
        assert notices == []
    with psycopg.connect(dsn, autocommit=True) as loud:
        notices = []
        loud.add_notice_handler(lambda d: notices.append(told(d)))
        loud.execute("SET work_mem = '8MB'")
        ((severity, sqlstate, message, hint),) = notices
        assert (severity, sqlstate) == ("WARNING", "01000")
        assert "last only until the end of the transaction" in str(message)
        assert "SET LOCAL" in str(hint)
        assert loud.execute("SHOW work_mem").fetchone() == default  # gone, as it said
        loud.execute("SELECT set_config('app.tenant', %s, false)", ["7"])  # (extended)
        loud.execute("SET statement_timeout = '5s'")
        assert len(notices) == 1  # once per session
    with psycopg.connect(dsn, autocommit=True) as prepared:
        notices = []
        prepared.add_notice_handler(lambda d: notices.append(told(d)))
        prepared.execute("SELECT set_config('app.tenant', %s, false)", ["7"], prepare=True)
        assert len(notices) == 1
    psql = psql_factory(dsn)
    lines = psql.run("SET search_path = nowhere;")
    assert lines[0].startswith("WARNING:  dbsight proxy: in transaction pooling, session settings")
    assert psql.run("SHOW search_path;") == ['"$user", public']


def test_session_mode_keeps_session_settings_and_says_nothing(
    pg_replicated: Any, proxy_factory: Any
) -> None:
    """Session mode with the proxy's own connections (here: a replica): the session keeps
    its connection, so a SET lasts and nothing is said."""
    primary = pg_replicated.dsn()
    proxy = proxy_factory(primary, pool_mode="session", replicas=[pg_replicated.replica_dsn()])
    with psycopg.connect(proxy.dsn(primary), autocommit=True) as conn:
        notices: list[tuple[str | None, ...]] = []
        conn.add_notice_handler(lambda d: notices.append(told(d)))
        conn.execute("SET work_mem = '8MB'")
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
        assert notices == []
