"""How long the index advisor takes on a workload of 200 distinct statements over 20 tables
(the target: 30 s at most).

A private embedded PostgreSQL gets 20 tables of ``--rows`` rows (eight columns each: ids,
low- and high-cardinality codes, timestamps, amounts), HypoPG and fresh statistics. The
workload holds ten statement shapes per table: equality lookups, equality plus range, ORDER
BY ... LIMIT, IN lists, joins to the next table, covering reads, an UPDATE and a DELETE by
key, with parameter samples for every other statement (the rest get generic plans), plus
INSERT traffic on a few tables so write costs count. Timed: `advise_indexes` end to end
(median of ``--rounds``), printed with the number of indexes, EXPLAINs and round trips.

    ./dev bench advise [--rows 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time

import psycopg

from dbsight.advise import advise_indexes
from dbsight.embedded.postgres import EmbeddedPostgres
from dbsight.sql import analyze
from dbsight.workload import Sample, Workload, WorkloadStatement

TABLES = 20
TARGET_S = 30.0


def schema(rows: int) -> list[str]:
    parts = ["CREATE EXTENSION IF NOT EXISTS hypopg"]
    for t in range(TABLES):
        parts.append(
            f"CREATE TABLE t{t} (id int PRIMARY KEY, ref int NOT NULL, code text NOT NULL, "
            "kind int NOT NULL, owner int NOT NULL, amount numeric NOT NULL, "
            "created_at timestamptz NOT NULL, note text)"
        )
        parts.append(
            f"INSERT INTO t{t} SELECT i, 1 + (i * 7919) % {rows}, 'c' || (i % 997), i % 5, "
            f"i % 3001, (i % 10000) / 100.0, now() - i * interval '1 second', NULL "
            f"FROM generate_series(1, {rows}) i"
        )
    parts.append("VACUUM ANALYZE")
    return parts


def shapes(t: int) -> list[tuple[str, list[tuple[str, ...]] | None]]:
    """Ten statements on table t{t}: (text with $n, parameter tuples for samples or None)."""
    nxt = (t + 1) % TABLES
    rnd = random.Random(t)
    owners = [(str(rnd.randrange(3001)),) for _ in range(5)]
    return [
        (f"SELECT * FROM t{t} WHERE owner = $1", owners),
        (f"SELECT id, amount FROM t{t} WHERE owner = $1 AND created_at > $2", None),
        (f"SELECT id FROM t{t} WHERE kind = $1 ORDER BY created_at DESC LIMIT $2",
         [(str(k), "10") for k in range(5)]),
        (f"SELECT * FROM t{t} WHERE code = $1", None),
        (f"SELECT code, amount FROM t{t} WHERE ref IN ($1, $2, $3)",
         [tuple(str(rnd.randrange(1, 20000)) for _ in range(3)) for _ in range(5)]),
        (f"SELECT a.id, b.amount FROM t{t} a JOIN t{nxt} b ON b.ref = a.id WHERE a.owner = $1",
         None),
        (f"SELECT count(*) FROM t{t} WHERE amount BETWEEN $1 AND $2",
         [(str(a), str(a + 2)) for a in (5, 20, 40, 60, 80)]),
        (f"UPDATE t{t} SET note = $1 WHERE ref = $2", None),
        (f"SELECT id FROM t{t} WHERE owner = $1 AND kind = $2 ORDER BY amount LIMIT 5",
         [(o, str(k)) for (o,), k in zip(owners, range(5))]),
        (f"DELETE FROM t{t} WHERE code = $1 AND created_at < $2", None),
    ]


def workload(seed: int = 1) -> Workload:
    rnd = random.Random(seed)
    statements: list[WorkloadStatement] = []
    for t in range(TABLES):
        for text, samples in shapes(t):
            info = analyze(text, "postgresql")
            calls = rnd.randrange(50, 5000)
            statements.append(WorkloadStatement(
                fingerprint=info.fingerprint, normalized=info.normalized,
                operation=info.operation, tables=info.tables, calls=calls,
                total_time_s=calls * rnd.uniform(0.0005, 0.02),
                samples=[Sample(text, s) for s in samples or []], sources=("bench",),
            ))  # fmt: skip
        if t % 4 == 0:  # write traffic on a few tables
            info = analyze(f"INSERT INTO t{t} (id, ref) VALUES ($1, $2)", "postgresql")
            statements.append(WorkloadStatement(
                fingerprint=info.fingerprint, normalized=info.normalized,
                operation=info.operation, tables=info.tables, calls=200_000,
                total_time_s=20.0, rows=200_000, sources=("bench",),
            ))  # fmt: skip
    return Workload.of(statements, window_s=600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per table")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # Each advised index is also an advice event, logged as a JSON line: not wanted here.
    logging.getLogger("dbsight.advice").setLevel(logging.ERROR)
    with EmbeddedPostgres(name="dbsight-bench") as server:
        dsn = server.create_database("bench_advise")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for part in schema(args.rows):
                conn.execute(part)
            conn.execute("VACUUM ANALYZE")
        load = workload()
        planned = sum(1 for s in load if s.operation != "insert")
        times = []
        advice = None
        for _ in range(args.rounds):
            started = time.perf_counter()
            advice = advise_indexes(dsn, load)
            times.append(time.perf_counter() - started)
    assert advice is not None
    median = statistics.median(times)
    print(f"workload: {len(load)} statements ({planned} to advise on, plus INSERT traffic) "
          f"over {TABLES} tables, {args.rows:,} rows each")  # fmt: skip
    print(f"advice: {len(advice.indexes)} indexes, {len(advice.rejected)} rejected, "
          f"{advice.explains:,} EXPLAINs in {advice.round_trips:,} round trips")  # fmt: skip
    print(f"time: median {median:.2f} s of {args.rounds} rounds "
          f"(min {min(times):.2f}, max {max(times):.2f}); target ≤ {TARGET_S:.0f} s: "
          f"{'met' if median <= TARGET_S else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
