"""``dbsight.instrument()`` dispatch and the handle table."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa

import dbsight
from dbsight.instrument import live_handles, uninstrument_all


def test_unknown_target_names_the_supported_types(events: Any) -> None:
    with pytest.raises(TypeError, match="asyncpg Connection / Pool") as caught:
        dbsight.instrument(object())
    assert "builtins.object" in str(caught.value)
    with pytest.raises(TypeError, match="unknown option"):
        dbsight.instrument(sa.create_engine("sqlite://"), sampling=0.5)


def test_handles_are_listed_until_uninstrumented(tmp_path: Any, events: Any) -> None:
    engines = [sa.create_engine(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(2)]
    handles = [dbsight.instrument(e) for e in engines]
    assert dbsight.InstrumentationHandle.live() == handles == live_handles()
    assert all(h.active for h in handles)
    handles[0].uninstrument()
    assert live_handles() == handles[1:] and not handles[0].active
    uninstrument_all()
    assert live_handles() == []
    for engine in engines:
        engine.dispose()


def test_importing_dbsight_imports_no_client_library() -> None:
    code = (
        "import sys, dbsight\n"
        "clients = {'sqlalchemy', 'asyncpg', 'psycopg', 'psycopg_pool', 'pymysql', 'aiosqlite'}\n"
        "print(sorted(clients & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_instrumenting_a_database_client_loads_its_parser_and_importing_does_not(
    pg_dsn: str,
) -> None:
    """The first statement of an instrumented client must not pay for compiling the SQL lexer
    and loading the parser (tens of milliseconds): instrument() does it, import does not."""
    code = (
        "import sys, psycopg, sqlalchemy as sa, dbsight\n"
        "from dbsight.sql import warmed\n"
        "before = warmed('postgresql'), warmed('sqlite')\n"
        "conn = psycopg.connect(sys.argv[1], autocommit=True)\n"
        "dbsight.instrument(conn)\n"
        "middle = warmed('postgresql'), warmed('sqlite')\n"
        "dbsight.instrument(sa.create_engine('sqlite://'))\n"
        "print(before, middle, (warmed('postgresql'), warmed('sqlite')))\n"
        "conn.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, pg_dsn], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "(False, False) (True, False) (True, True)"
