"""A client's settings on pooled server connections, without a network: startup parameters
read as PostgreSQL reads them, the Query that gives a connection a client's settings, and
what a client's statements and the server's ParameterStatus do to them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dbsight.proxy import protocol as p
from dbsight.proxy._client_settings import (
    SETTINGS_NOTICE,
    ClientSettings,
    StartupSettingsError,
    name_list,
    prelude,
    wanted_settings,
)
from dbsight.proxy._setting_statements import maybe_sets, setting_statements


def test_startup_parameters_and_options_become_settings() -> None:
    settings = wanted_settings({
        "user": "app", "database": "shop", "TimeZone": "UTC", "_pq_.extension": "on",
        "options": r"-c TimeZone=Asia/Tokyo --search-path=a,b -cwork_mem=8MB -c x.y=a\ b",
    })
    # a parameter of its own wins over options; names lower-case; application_name always
    assert settings == {
        "timezone": "UTC", "search_path": "a,b", "work_mem": "8MB", "x.y": "a b",
        "application_name": "",
    }


@pytest.mark.parametrize(
    ("parameters", "sqlstate", "message"),
    [
        ({"options": "-d 5"}, "0A000", "unsupported startup option '-d'"),
        ({"options": "-c"}, "08P01", "needs name=value"),
        ({"options": "-c work_mem"}, "08P01", "option -c work_mem needs name=value"),
        ({"options": "-cwork_mem"}, "08P01", "option -cwork_mem needs name=value"),
        ({"options": "--work_mem"}, "08P01", "option --work_mem needs name=value"),
        ({"replication": "database"}, "0A000", "replication connections"),
        ({"search_path": "a,,b"}, "22023", 'invalid list syntax in parameter "search_path"'),
    ],
)
def test_startup_parameters_pooled_connections_cannot_take(
    parameters: dict[str, str], sqlstate: str, message: str
) -> None:
    with pytest.raises(StartupSettingsError, match=message) as raised:
        wanted_settings(parameters)
    assert raised.value.sqlstate == sqlstate


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", []),
        ("a", ["a"]),
        (" A , b ", ["a", "b"]),
        ('"$user", public', ["$user", "public"]),
        ('"My ""S,c""" ,x', ['My "S,c"', "x"]),
        ("a,", None),
        ("a b", None),
        ('"x', None),
    ],
)
def test_name_lists_read_as_the_server_reads_them(text: str, names: list[str] | None) -> None:
    assert name_list(text) == names


def test_the_prelude_resets_what_the_client_lacks_and_sets_the_rest() -> None:
    have = {"timezone": "UTC", "work_mem": "8MB", "app.tenant": "1"}
    want = {"timezone": "Asia/Tokyo", "search_path": '"$user", Public', "datestyle": "ISO, DMY"}
    assert prelude(have, want) == [(
        'RESET "work_mem"; RESET "app"."tenant"; SET "timezone" TO E\'Asia/Tokyo\'; '
        "SET \"search_path\" TO E'$user', E'public'; SET \"datestyle\" TO E'ISO, DMY'"
    )]
    assert prelude(want, dict(want)) == []
    assert prelude({}, {"x.y": "it's"}) == ["SET \"x\".\"y\" TO E'it''s'"]


def test_text_that_is_not_ascii_is_read_as_utf8_whatever_the_connection_had() -> None:
    assert prelude({"client_encoding": "LATIN1"}, {"search_path": "café"}) == [
        "SET client_encoding TO 'UTF8'",
        'RESET "client_encoding"; SET "search_path" TO E\'café\'',
    ]
    assert prelude({}, {"application_name": "é", "client_encoding": "LATIN1"}) == [
        "SET client_encoding TO 'UTF8'",
        "SET \"application_name\" TO E'é'; SET \"client_encoding\" TO E'LATIN1'",
    ]


@pytest.mark.parametrize(
    ("sql", "effects"),
    [
        ("SET work_mem = 1", [("set", "work_mem", False)]),
        ("SET LOCAL app.tenant TO 2", [("set", "app.tenant", True)]),
        ("SET TIME ZONE 'UTC'", [("set", "timezone", False)]),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
         [("set", "session characteristics", False)]),
        ("SET TRANSACTION READ ONLY", []),
        ("RESET work_mem; SET x TO DEFAULT", [("reset", "work_mem", False), ("reset", "x", False)]),
        ("RESET ALL", [("reset", "*", False)]),
        ("DISCARD ALL", [("reset", "*", False)]),
        ("BEGIN; SET a = 1; COMMIT",
         [("begin", "", False), ("set", "a", False), ("end", "", False)]),
        ("SELECT set_config('A.b', '1', false), pg_catalog.set_config('c', $1, 'on')",
         [("set", "a.b", False), ("set", "c", True)]),
        ("SELECT set_config($1, $2, $3)", [("set", "", True)]),  # unknown: not warned about
        ("SELEC 1", []),
    ],
)
def test_what_a_text_does_to_settings(sql: str, effects: list[tuple[str, str, bool]]) -> None:
    assert maybe_sets(sql) or not effects
    assert list(setting_statements(sql)) == effects


def test_texts_that_set_nothing_are_not_parsed() -> None:
    assert not maybe_sets("SELECT * FROM t WHERE id = $1")
    assert not maybe_sets("UPDATE t SET a = 1")
    assert maybe_sets("SELECT 1; set work_mem = 1")
    assert not maybe_sets("/* app='x' */ SELECT 1 -- SET")
    assert maybe_sets("/* app='x' */ SET work_mem = 1")
    assert maybe_sets("SELECT 1;\n-- now\n/**/set work_mem = 1")
    assert maybe_sets("/* a /* nested */ comment */ SELECT 1")  # not skipped: parsed to be sure


def test_comments_before_a_statement_are_read_past() -> None:
    assert list(setting_statements("/* app */ SET work_mem = 1")) == [("set", "work_mem", False)]
    assert list(setting_statements("/* a /* b */ */ SELECT 1")) == []


def logged_in(**startup: str) -> ClientSettings:
    settings = ClientSettings(wanted_settings(startup))
    settings.logged_in({
        "TimeZone": startup.get("TimeZone", "UTC"), "DateStyle": "ISO, MDY",
        "application_name": "", "server_version": "15.0",
    })
    return settings


def test_a_connection_gets_the_settings_once() -> None:
    settings = logged_in(TimeZone="Asia/Tokyo")
    conn = SimpleNamespace(settings={})
    assert settings.give(conn, primary=True) == [
        p.encode(p.Query("SET \"timezone\" TO E'Asia/Tokyo'; SET \"application_name\" TO E''"))
    ]
    assert conn.settings is settings.wanted
    assert settings.give(conn, primary=True) == []


def test_a_set_of_a_carried_setting_becomes_the_clients() -> None:
    settings = logged_in(TimeZone="Asia/Tokyo")
    conn = SimpleNamespace(settings=settings.wanted)
    assert settings.statement(conn, "SET TimeZone = 'America/Lima'", False, True) == b""
    assert settings.parameter(conn, "TimeZone", "America/Lima") == b""
    assert settings.wanted["timezone"] == "America/Lima"
    assert conn.settings is settings.wanted  # the connection has it as well
    assert settings.parameter(conn, "server_version", "16.0") == b""  # not a setting


def test_a_reset_brings_the_startup_value_back_and_tells_the_client() -> None:
    settings = logged_in(TimeZone="Asia/Tokyo")
    conn = SimpleNamespace(settings=settings.wanted)
    settings.statement(conn, "SET TimeZone = 'America/Lima'", False, True)
    settings.parameter(conn, "TimeZone", "America/Lima")
    settings.statement(conn, "RESET ALL", False, True)
    assert conn.settings == {}  # back to the pool's settings
    # the server reports the pool's value: the client is told its own right after
    assert settings.parameter(conn, "TimeZone", "UTC") == p.parameter_status(
        "TimeZone", "Asia/Tokyo"
    )
    assert settings.wanted["timezone"] == "Asia/Tokyo"
    settings.cycle_ended()
    assert settings.parameter(conn, "TimeZone", "UTC") == b""  # a later report: the client's
    assert settings.wanted["timezone"] == "UTC"


def test_a_set_after_reset_all_in_the_same_text_counts() -> None:
    settings = logged_in(TimeZone="Asia/Tokyo")
    conn = SimpleNamespace(settings=settings.wanted)
    settings.statement(conn, "RESET ALL; SET TimeZone = 'Europe/Oslo'", False, True)
    assert settings.parameter(conn, "TimeZone", "Europe/Oslo") == b""
    assert settings.wanted["timezone"] == "Europe/Oslo"


@pytest.mark.parametrize(
    ("sql", "in_block", "warned"),
    [
        ("SET work_mem = '8MB'", False, True),
        ("SET work_mem = '8MB'", True, False),
        ("SET LOCAL work_mem = '8MB'", False, False),
        ("SET TimeZone = 'UTC'", False, False),  # carried
        ("BEGIN; SET work_mem = '8MB'; COMMIT", False, False),
        ("SET work_mem = '8MB'; BEGIN", False, True),
        ("SELECT set_config('app.tenant', '1', false)", False, True),
        ("SELECT set_config('app.tenant', '1', true)", False, False),
        ("RESET work_mem", False, False),
    ],
)
def test_what_gets_the_warning(sql: str, in_block: bool, warned: bool) -> None:
    settings = logged_in()
    conn = SimpleNamespace(settings=settings.wanted)
    said = settings.statement(conn, sql, in_block, True)
    assert said == (SETTINGS_NOTICE if warned else b"")
    assert settings.statement(conn, sql, in_block, True) == b""  # once per session
    assert logged_in().statement(conn, sql, in_block, False) == b""  # session mode: never
