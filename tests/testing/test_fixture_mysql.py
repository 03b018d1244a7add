"""mysql_dsn: a fresh MariaDB database per test."""

from __future__ import annotations

import os

import pymysql
import pytest

from dbsight.testing import MysqlServer, mysql_connect_kwargs

_seen: dict[str, str] = {}


def test_mysql_round_trip(mysql_dsn: str) -> None:
    kwargs = mysql_connect_kwargs(mysql_dsn)
    assert kwargs["database"].startswith("dbsight_test_")
    conn = pymysql.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB")
            cur.executemany("INSERT INTO items VALUES (%s, %s)", [(1, "one"), (2, "tw\u00f6")])
            conn.commit()
            cur.execute("SELECT id, name FROM items ORDER BY id")
            assert cur.fetchall() == ((1, "one"), (2, "tw\u00f6"))
            cur.execute("SELECT DATABASE(), @@character_set_database")
            assert cur.fetchone() == (kwargs["database"], "utf8mb4")
    finally:
        conn.close()


def test_first_of_two_gets_a_database(mysql_dsn: str) -> None:
    _seen["first"] = mysql_connect_kwargs(mysql_dsn)["database"]


def test_second_of_two_gets_another_database(mysql_dsn: str, mysql_server: MysqlServer) -> None:
    if "first" not in _seen:
        pytest.skip("runs after test_first_of_two_gets_a_database")
    assert mysql_connect_kwargs(mysql_dsn)["database"] != _seen["first"]
    assert not mysql_server.database_exists(_seen["first"])


def test_drop_kills_sessions_holding_locks(mysql_server: MysqlServer) -> None:
    name = mysql_server.create_database()
    conn = pymysql.connect(**mysql_server.connect_kwargs(name))
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (x INT) ENGINE=InnoDB")
            cur.execute("INSERT INTO t VALUES (1)")
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM t FOR UPDATE")  # holds a metadata lock on t
        mysql_server.drop_database(name)
        assert not mysql_server.database_exists(name)
    finally:
        try:
            conn.close()
        except Exception:
            pass  # the session was killed


def test_default_server_is_private(mysql_server: MysqlServer) -> None:
    if os.environ.get("DBSIGHT_TEST_MYSQL_DSN"):
        pytest.skip("DBSIGHT_TEST_MYSQL_DSN selects an external server")
    assert mysql_server.embedded is not None
    assert mysql_server.embedded.port != 3306


def test_mysql_connect_kwargs() -> None:
    assert mysql_connect_kwargs("mysql+pymysql://u:p%40w@db.local:3307/app?connect_timeout=5") == {
        "host": "db.local",
        "port": 3307,
        "user": "u",
        "password": "p@w",
        "database": "app",
        "connect_timeout": 5,
    }
    with pytest.raises(ValueError):
        mysql_connect_kwargs("postgresql://x@y/z")
