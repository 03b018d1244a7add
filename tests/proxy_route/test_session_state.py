"""The session state a session-mode client's replica reads must share: custom setting names
found in statements, and the state query run on a real server session."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dbsight.proxy._session_state import SessionState, custom_settings, literal, state_query


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SET app.tenant = 'acme'", ["app.tenant"]),
        ("set session App.Tenant to 1", ["app.tenant"]),
        ('SET "my.app" = 1', ["my.app"]),
        ("SELECT set_config('request.jwt.claims', $1, false)", ["request.jwt.claims"]),
        ("SET search_path = a.b", []),  # a built-in setting: pg_settings has it
        ("SELECT 1.5", []),
        ("SELECT set_config('x.y z\\', '1', false)", []),  # not a name to put in a literal
    ],
)
def test_custom_setting_names_in_statements(sql: str, names: list[str]) -> None:
    buf = b"Q...." + sql.encode() + b"\0"
    assert custom_settings(buf, 5, len(buf) - 1) == names


def test_literal_survives_quotes_and_backslashes(pg_dsn: str) -> None:
    text = "it's a \\ path\\'"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute(f"SELECT {literal(text)}").fetchone() == (text,)


def read_state(conn: psycopg.Connection[Any], custom: set[str]) -> SessionState:
    user = conn.info.user
    row = conn.execute(f"SELECT {state_query(user, custom)}").fetchone()
    assert row is not None
    settings, pinned = row
    return SessionState.from_row(settings, "t" if pinned else "f")


def test_state_query_on_a_real_session(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("RESET ALL")
        fresh = read_state(conn, {"app.tenant"})
        assert fresh.settings == {} and fresh.pinned is False

        conn.execute("SET work_mem = '12MB'")
        conn.execute("SET app.tenant = 'acme'")
        state = read_state(conn, {"app.tenant", "app.unset"})
        assert state.settings == {"work_mem": "12288", "app.tenant": "acme"}
        assert not state.pinned

        conn.execute("CREATE TEMP TABLE pinned_here (x int)")
        assert read_state(conn, set()).pinned
        conn.execute("DROP TABLE pinned_here")
        conn.execute("LISTEN dbsight_state")
        assert read_state(conn, set()).pinned
        conn.execute("UNLISTEN *")
        conn.execute("SET ROLE pg_read_all_data")
        assert read_state(conn, set()).pinned
        conn.execute("RESET ROLE")
        conn.execute("DISCARD ALL")
        assert read_state(conn, {"app.tenant"}) == SessionState({}, False)
