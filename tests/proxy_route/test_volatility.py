"""FunctionVolatility: a SELECT calling functions goes to a replica only if the server says
every one of them is STABLE or IMMUTABLE; anything unknown, volatile or odd goes to the primary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import pytest

from dbsight.proxy._backend import BackendConnection, BackendSpec, QueryResult
from dbsight.proxy._volatility import FunctionVolatility
from dbsight.sql import SqlInfo, analyze

SETUP = """
CREATE TABLE t (a int);
CREATE SEQUENCE seq;
CREATE FUNCTION writer() RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO t VALUES (1); RETURN 1; END $$;
CREATE FUNCTION st(x int) RETURNS int STABLE LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION im(x int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT x + 1';
CREATE SCHEMA s;
CREATE FUNCTION s.f(x int) RETURNS int STABLE LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION mixed(x int) RETURNS int STABLE LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION mixed(x text) RETURNS text VOLATILE LANGUAGE sql AS 'SELECT x';
CREATE SCHEMA hidden;
CREATE FUNCTION shadowed() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION hidden.shadowed() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 2';
CREATE FUNCTION add_writes(s int, x int) RETURNS int LANGUAGE sql AS 'SELECT s + x';
CREATE FUNCTION im_add(s int, x int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT s + x';
CREATE AGGREGATE agg_volatile(int) (SFUNC = add_writes, STYPE = int, INITCOND = '0');
CREATE AGGREGATE agg_stable(int) (SFUNC = im_add, STYPE = int, INITCOND = '0');
"""


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[BackendConnection]:
    parts = urlsplit(pg_dsn)
    spec = BackendSpec(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        database=unquote(parts.path.lstrip("/")),
        password=unquote(parts.password) if parts.password else None,
    )
    connection = await BackendConnection.connect(spec)
    try:
        yield connection
    finally:
        await connection.close()


async def judge(vol: FunctionVolatility, conn: BackendConnection, sql: str) -> bool:
    """The verdict on ``sql``, resolving what is missing first (as the relay would)."""
    info = analyze(sql)
    missing = vol.missing(info, 0.0)
    if missing:
        await vol.resolve(missing, conn.execute, 0.0)
    verdict = vol.verdict(info, 0.0)
    assert verdict is not None
    return verdict


async def test_verdicts_follow_the_servers_volatility(conn: BackendConnection) -> None:
    await conn.execute(SETUP)
    vol = FunctionVolatility()
    cases = {
        "SELECT writer()": False,  # plpgsql, volatile by default, inserts
        "SELECT st(1)": True,
        "SELECT im(a) FROM t": True,
        "SELECT s.f(a) FROM t WHERE st(a) > im(a)": True,
        "SELECT nextval('seq')": False,
        "SELECT pg_advisory_lock(1)": False,
        "SELECT no_such_function(1)": False,
        "SELECT s.no_such_function(1)": False,
        "SELECT no_such_schema.st(1)": False,
        "SELECT st(1), writer()": False,
        "SELECT mixed(1)": False,  # one overload is volatile; the text does not say which runs
        "SELECT shadowed()": False,  # volatile in a schema a client's search_path may name
        "SELECT public.shadowed()": True,
        "SELECT hidden.shadowed()": False,
        "SELECT agg_volatile(a) FROM t": False,  # recorded IMMUTABLE, its SFUNC is volatile
        "SELECT agg_stable(a) FROM t": True,
        "SELECT st(1) FROM t FOR UPDATE": False,  # not read-only for another reason
        "EXPLAIN SELECT st(1)": False,  # only SELECTs are judged
        "SELECT 1": True,
    }
    verdicts = {sql: await judge(vol, conn, sql) for sql in cases}
    assert verdicts == cases


async def test_one_query_for_all_missing_names(conn: BackendConnection) -> None:
    await conn.execute(SETUP)
    vol = FunctionVolatility()
    info = analyze("SELECT st(a), im(a), s.f(a), nextval('seq'), st(2) FROM t")
    assert info.functions == ("st", "im", "s.f", "nextval")
    assert vol.verdict(info, 0.0) is None
    assert vol.missing(info, 0.0) == info.functions
    queries: list[str] = []

    async def execute(sql: str) -> list[QueryResult]:
        queries.append(sql)
        return await conn.execute(sql)

    await vol.resolve(vol.missing(info, 0.0), execute, 0.0)
    assert len(queries) == 1
    assert vol.missing(info, 0.0) == ()
    assert vol.verdict(info, 0.0) is False  # nextval
    only_stable = analyze("SELECT st(a), s.f(a) FROM t")
    assert vol.missing(only_stable, 0.0) == ()
    assert vol.verdict(only_stable, 0.0) is True


async def test_a_redefinition_changes_the_verdict(conn: BackendConnection) -> None:
    await conn.execute("CREATE FUNCTION g() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1'")
    vol = FunctionVolatility(ttl_s=60)
    info = analyze("SELECT g()")
    await vol.resolve(vol.missing(info, 0.0), conn.execute, 0.0)
    assert vol.verdict(info, 0.0) is True

    (result,) = await conn.execute(
        "CREATE OR REPLACE FUNCTION g() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1'"
    )
    assert vol.verdict(info, 1.0) is True  # the proxy has not seen the tag yet
    assert vol.note_command_tag(result.tag.encode()) is True
    assert vol.verdict(info, 1.0) is None
    await vol.resolve(vol.missing(info, 1.0), conn.execute, 1.0)
    assert vol.verdict(info, 1.0) is False

    await conn.execute("ALTER FUNCTION g() STABLE")
    assert vol.verdict(info, 60.0) is False  # cached: the ALTER was not reported
    assert vol.verdict(info, 61.0) is None  # but only for ttl_s
    await vol.resolve(vol.missing(info, 61.0), conn.execute, 61.0)
    assert vol.verdict(info, 61.0) is True


async def test_an_answer_overtaken_by_an_invalidation_is_not_kept(
    conn: BackendConnection,
) -> None:
    await conn.execute("CREATE FUNCTION g() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1'")
    vol = FunctionVolatility()
    info = analyze("SELECT g()")

    async def execute_during_ddl(sql: str) -> list[QueryResult]:
        answer = await conn.execute(sql)
        vol.note_command_tag(b"ALTER FUNCTION")  # another session, while the answer travels
        return answer

    await vol.resolve(["g"], execute_during_ddl, 0.0)
    assert vol.verdict(info, 0.0) is None


async def test_names_reach_the_server_quoted(conn: BackendConnection) -> None:
    odd = "x'); drop table t; --"
    await conn.execute(
        "CREATE TABLE t (a int);"
        f"""CREATE FUNCTION "{odd}"() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1';"""
        """CREATE FUNCTION "Ünï ""q"" \\"() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 2'"""
    )
    vol = FunctionVolatility()
    info = analyze(f'SELECT "{odd}"(), "Ünï ""q"" \\"() FROM t')
    assert info.functions == (odd, 'Ünï "q" \\')
    await vol.resolve(vol.missing(info, 0.0), conn.execute, 0.0)
    assert vol.verdict(info, 0.0) is True

    names = ["';", "\\'", "$$", "$x$", "a\\", "\x00", "a.b.c", "", ".f", "f.", "日本語", odd * 9]
    await vol.resolve(names, conn.execute, 0.0)
    (exists,) = await conn.execute("SELECT count(*) FROM pg_class WHERE relname = 't'")
    assert exists.rows == (("1",),)
    for name in names:  # no such functions: volatile
        assert vol.verdict(calling(name), 0.0) is False


def calling(*names: str) -> SqlInfo:
    """What ``analyze`` says of a SELECT whose only obstacle is calls of ``names``."""
    return SqlInfo("SELECT ...", "0" * 16, "select", (), False, names)


def test_no_server_needed_when_the_text_decides() -> None:
    vol = FunctionVolatility()
    assert vol.verdict(analyze("SELECT lower(x) FROM t"), 0.0) is True
    assert vol.missing(analyze("SELECT lower(x) FROM t"), 0.0) == ()
    for sql in ("DELETE FROM t", "SELECT f() FROM t FOR SHARE", "INSERT INTO t SELECT f()"):
        assert vol.verdict(analyze(sql), 0.0) is False
        assert vol.missing(analyze(sql), 0.0) == ()
    assert vol.verdict(analyze("SELECT f()", "mysql"), 0.0) is False


@pytest.mark.parametrize(
    "tag",
    [
        b"CREATE FUNCTION",
        b"ALTER FUNCTION",
        b"DROP FUNCTION",
        b"CREATE PROCEDURE",
        b"ALTER ROUTINE",
        b"CREATE AGGREGATE",
        b"CREATE EXTENSION",
        b"ALTER EXTENSION",
        b"DROP SCHEMA",
        b"ALTER SCHEMA",
        b"DROP OWNED",
        b"CREATE FUNCTION\x00",
    ],
)
def test_tags_that_invalidate(tag: bytes) -> None:
    assert FunctionVolatility().note_command_tag(tag) is True


@pytest.mark.parametrize("tag", [b"SELECT 1", b"INSERT 0 1", b"CREATE TABLE", b"COMMIT", b""])
def test_tags_that_do_not(tag: bytes) -> None:
    assert FunctionVolatility().note_command_tag(tag) is False


@pytest.mark.parametrize("options", [{"ttl_s": 0}, {"ttl_s": float("nan")}, {"max_names": 0}])
def test_bad_options(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        FunctionVolatility(**options)  # type: ignore[arg-type]


async def test_operators_with_a_volatile_function_keep_a_text_on_the_primary(
    conn: BackendConnection,
) -> None:
    """The built-in operators are side-effect free; a user's operator of the same symbol for
    other types may not be: texts using a symbol some volatile operator has go to the
    primary, whatever their types."""
    await conn.execute(
        """
        CREATE TABLE ops_t (a int);
        CREATE FUNCTION add_logged(int, int) RETURNS int LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO ops_t VALUES ($1); RETURN $1 + $2; END $$;
        CREATE OPERATOR ## (LEFTARG = int, RIGHTARG = int, FUNCTION = add_logged);
        """
    )
    vol = FunctionVolatility()
    queries: list[str] = []

    async def execute(sql: str) -> list[QueryResult]:
        queries.append(sql)
        return await conn.execute(sql)

    async def verdict(sql: str) -> bool | None:
        info = analyze(sql)
        missing = vol.missing(info, 0.0)
        if missing:
            await vol.resolve(missing, execute, 0.0)
        return vol.verdict(info, 0.0)

    assert await verdict("SELECT 1 ## 2") is False
    assert await verdict("SELECT point '(1,1)' ## lseg '((0,0),(2,2))'") is False  # same symbol
    assert await verdict("SELECT a FROM ops_t WHERE a = 1 ORDER BY a") is True
    assert len(queries) == 1  # one question about operators, answered for every symbol
    await conn.execute("DROP OPERATOR ## (int, int)")
    vol.invalidate()
    assert await verdict("SELECT 1 ## 2") is True  # the built-in one (geometry) is left
