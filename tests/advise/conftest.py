"""One database of known tables for the plan-analyzer tests (made once per module: the big
tables take a moment) and a helper running EXPLAIN on it the way the slow log does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

# big: 100,000 rows. grp has 1,000 values of 100 rows each; a = b = id % 200 (correlated,
# which the planner assumes independent); pad is text wide enough for sorts to spill.
SCHEMA = """
CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, a int NOT NULL, b int NOT NULL,
                  val int NOT NULL, pad text NOT NULL);
INSERT INTO big SELECT g, g % 1000, g % 200, g % 200, (g * 7919) % 100000,
                       md5(g::text) || md5((g + 1)::text)
FROM generate_series(1, 100000) g;
CREATE INDEX big_grp_idx ON big (grp);
CREATE TABLE small (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO small SELECT g, 'n' || g FROM generate_series(1, 2000) g;
CREATE TABLE tiny (id int PRIMARY KEY, val int NOT NULL);
INSERT INTO tiny SELECT g, g % 500 FROM generate_series(1, 1000) g;
-- analyzed while every row had kind 0, then 50,000 rows of kind 1 nobody analyzed
CREATE TABLE stale (id int PRIMARY KEY, kind int NOT NULL) WITH (autovacuum_enabled = off);
INSERT INTO stale SELECT g, 0 FROM generate_series(1, 1000) g;
ANALYZE stale;
INSERT INTO stale SELECT g, 1 FROM generate_series(1001, 51000) g;
-- never vacuumed: its visibility map is empty, so index-only scans visit the heap
CREATE TABLE unvacuumed (id int PRIMARY KEY, v int NOT NULL) WITH (autovacuum_enabled = off);
INSERT INTO unvacuumed SELECT g, g FROM generate_series(1, 20000) g;
-- wide rows: a bitmap over most of its 2,500 pages does not fit in 64kB of work_mem
CREATE TABLE wide (id int PRIMARY KEY, grp int NOT NULL, pad text NOT NULL);
INSERT INTO wide SELECT g, g % 1000, repeat(md5(g::text), 12) FROM generate_series(1, 50000) g;
CREATE INDEX wide_grp_idx ON wide (grp);
CREATE TABLE vacuumed (id int PRIMARY KEY, v int NOT NULL) WITH (autovacuum_enabled = off);
INSERT INTO vacuumed SELECT g, g FROM generate_series(1, 20000) g;
ANALYZE big; ANALYZE small; ANALYZE tiny; ANALYZE wide;
"""


@pytest.fixture(scope="module")
def plan_db(pg_server: Any) -> Iterator[str]:
    with pg_server.temporary_database() as dsn:
        # synchronous commits: VACUUM marks a page all-visible only once the hint bits of
        # its rows are set, which waits for the inserting commit to be flushed
        with psycopg.connect(dsn, autocommit=True, options="-c synchronous_commit=on") as conn:
            # one statement at a time, each one's counts in the statistics before the next
            # (an ANALYZE must see the inserted rows as counted, not as changed since)
            for statement in SCHEMA.split(";"):
                lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
                if "".join(lines).strip():
                    conn.execute("\n".join(lines))
                    conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute("VACUUM (ANALYZE) vacuumed")
            conn.execute("ANALYZE unvacuumed")
        yield dsn
