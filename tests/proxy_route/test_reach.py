"""CatalogReach: what a write reaches and what a read sees, from the rows of its catalog query
(here as a real server returns them, and as small hand-made graphs)."""

from __future__ import annotations

import psycopg
import pytest

from dbsight.proxy._reach import QUERY, CatalogReach, row_local
from dbsight.sql import analyze


def reach_of(rows: list[tuple[str, str, str | None]]) -> CatalogReach:
    return CatalogReach(rows, loaded_at=0.0)


def test_views_partitions_cascades_and_triggers() -> None:
    reach = reach_of([
        ("v", "recent", "orders"),  # view recent reads orders
        ("v", "summary", "recent"),  # a view over a view
        ("i", "m1", "m"), ("i", "m2", "m"),  # partitions of m
        ("f", "orders", "lines"),  # lines references orders, ON DELETE CASCADE
        ("f", "lines", "notes"),
        ("t", "audited", None),  # a trigger
    ])
    assert reach.reads(["summary"]) == {"summary", "recent", "orders"}
    assert reach.reads(["m"]) == {"m", "m1", "m2"}
    assert reach.reads(["public.m1"]) == {"m1"}  # schema dropped, as the cache compares
    assert reach.writes(["m1"]) == {"m1", "m", "m2"}
    assert reach.writes(["orders"]) == {"orders", "lines", "notes"}  # cascades, transitively
    assert reach.writes(["recent"]) == {"recent", "orders", "lines", "notes"}  # updatable view
    assert reach.writes(["audited"]) is None  # anything
    assert reach.writes(["other", "audited"]) is None
    assert reach.writes(["plain"]) == {"plain"}


def test_a_trigger_behind_a_cascade_reaches_anything() -> None:
    reach = reach_of([("f", "orders", "lines"), ("t", "lines", None)])
    assert reach.writes(["orders"]) is None
    assert reach.reads(["orders"]) == {"orders"}


def test_the_catalog_query_on_a_real_database(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            """
            DROP TABLE IF EXISTS r_orders, r_lines, r_m, r_log CASCADE;
            CREATE TABLE r_orders (id int PRIMARY KEY);
            CREATE TABLE r_lines (id int, o int REFERENCES r_orders ON UPDATE SET NULL);
            CREATE TABLE r_m (at int) PARTITION BY RANGE (at);
            CREATE TABLE r_m1 PARTITION OF r_m FOR VALUES FROM (0) TO (10);
            CREATE VIEW r_view AS SELECT o.id FROM r_orders o JOIN r_lines l ON l.o = o.id;
            CREATE TABLE r_log (x int);
            CREATE RULE r_also AS ON INSERT TO r_log DO ALSO NOTIFY r_log;
            """
        )
        rows = conn.execute(QUERY).fetchall()
        conn.execute("DROP TABLE r_orders, r_lines, r_m, r_log CASCADE")
    reach = reach_of(rows)
    assert reach.reads(["r_view"]) == {"r_view", "r_orders", "r_lines"}
    assert reach.reads(["r_m"]) == {"r_m", "r_m1"}
    assert reach.writes(["r_orders"]) == {"r_orders", "r_lines"}
    assert reach.writes(["r_log"]) is None  # a rule
    assert reach.writes(["r_lines"]) == {"r_lines"}  # referencing: nothing cascades back


def test_calls_name_every_function_outside_the_allow_list() -> None:
    assert analyze("SELECT bump() FROM orders FOR UPDATE").calls == ("bump",)
    assert analyze("SELECT bump() FROM orders FOR UPDATE").functions == ()
    assert analyze("INSERT INTO t VALUES (nextval('s'), lower('A'))").calls == ("nextval",)
    assert analyze("SELECT count(*) FROM t").calls == ()


@pytest.mark.parametrize(
    ("body", "local"),
    [
        ("BEGIN NEW.updated_at := now(); RETURN NEW; END;", True),
        ("\nBEGIN\n  NEW.updated_at = clock_timestamp();\n"
         "  NEW.version := OLD.version + 1; -- a counter\n  RETURN NEW;\nEND;\n", True),
        ("BEGIN RETURN NEW; END", True),
        ("BEGIN INSERT INTO audit VALUES (1); RETURN NEW; END", False),
        ("BEGIN NEW.x := log_it(1); RETURN NEW; END", False),  # a function that may write
        ("BEGIN PERFORM pg_notify('c', 'x'); RETURN NEW; END", False),
        ("BEGIN NEW.note := 'a;b'; RETURN NEW; END", False),  # (not read this far)
        ("BEGIN IF NEW.x IS NULL THEN NEW.x := 0; END IF; RETURN NEW; END", False),
        (None, False),
    ],
)
def test_which_trigger_bodies_only_touch_their_row(body: str | None, local: bool) -> None:
    assert row_local(body) is local


def test_an_updated_at_trigger_reaches_only_its_table(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            """
            DROP TABLE IF EXISTS r_stamped, r_logged, r_audit CASCADE;
            CREATE TABLE r_audit (x int);
            CREATE TABLE r_stamped (id int, updated_at timestamptz);
            CREATE TABLE r_logged (id int);
            CREATE OR REPLACE FUNCTION r_stamp() RETURNS trigger LANGUAGE plpgsql AS
              $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;
            CREATE OR REPLACE FUNCTION r_log() RETURNS trigger LANGUAGE plpgsql AS
              $$BEGIN INSERT INTO r_audit VALUES (1); RETURN NEW; END$$;
            CREATE TRIGGER stamp BEFORE UPDATE ON r_stamped FOR EACH ROW EXECUTE FUNCTION r_stamp();
            CREATE TRIGGER log BEFORE INSERT ON r_logged FOR EACH ROW EXECUTE FUNCTION r_log();
            """
        )
        rows = conn.execute(QUERY).fetchall()
        conn.execute("DROP TABLE r_stamped, r_logged, r_audit CASCADE")
        conn.execute("DROP FUNCTION r_stamp(), r_log()")
    reach = reach_of(rows)
    assert reach.writes(["r_stamped"]) == {"r_stamped"}
    assert reach.writes(["r_logged"]) is None
