"""The per-fingerprint statistics table, fed through a real Recorder."""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import threading

import pytest
from threads_at_once import run_at_once

import dbsight
from dbsight.core import QueryEvent, Recorder, Settings, request_scope
from dbsight.stats import ORDER_BY, StatsSink, StatsTable


class PgError(Exception):
    sqlstate = "42P01"


def make_recorder(table: StatsTable) -> Recorder:
    rec = Recorder(Settings())
    rec.add_observer(StatsSink(table))
    return rec


def run(
    rec: Recorder, sql: str, rows: int | None = 1, fail: bool = False, **start_kw
) -> QueryEvent:
    ctx = rec.start(sql, "postgresql", "test", **start_kw)
    if fail:
        return rec.fail(ctx, PgError("relation does not exist"))
    return rec.finish(ctx, rows=rows)


def name(i: int) -> str:
    """A distinct table name per number (fingerprints ignore numeric suffixes, t10 == t11)."""
    return "t_" + "".join(chr(ord("a") + int(digit)) for digit in str(i))


_plain = Recorder(Settings())  # builds events without feeding any table


def event_for(sql: str, duration_s: float, **changes) -> QueryEvent:
    """An event as the recorder builds it, with a chosen duration (for exact arithmetic)."""
    event = _plain.finish(_plain.start(sql, "postgresql", "test"), rows=1)
    return dataclasses.replace(event, duration_s=duration_s, **changes)


def test_counts_calls_rows_errors_and_routes_per_fingerprint():
    table = StatsTable()
    rec = make_recorder(table)
    with request_scope(route="/users/{id}"):
        for user_id in (1, 2, 3):
            run(rec, f"SELECT * FROM users WHERE id = {user_id}", rows=1, database="shop")
    with request_scope(route="/admin"):
        run(rec, "SELECT * FROM users WHERE id = 4", fail=True)
    run(rec, "UPDATE users SET name = 'x' WHERE id = 1", rows=1)

    assert len(table) == 2
    (users,) = [s for s in table.top(10) if s.operation == "select"]
    assert users.calls == 4
    assert users.rows == 3
    assert users.errors == 1
    assert users.tables == ("users",)
    assert users.system == "postgresql"
    assert "4" not in users.normalized
    assert users.routes == {"/users/{id}": 3, "/admin": 1}
    assert users.databases == ("shop",)
    assert users.min_time_s <= users.p50_s <= users.p95_s <= users.p99_s <= users.max_time_s
    assert users.mean_time_s == pytest.approx(users.total_time_s / 4)
    assert users.first_seen <= users.last_seen


def test_unknown_rows_are_not_zero_rows():
    table = StatsTable()
    rec = make_recorder(table)
    for rows in (5, None, 3, None):  # two calls whose client said no row count
        run(rec, "SELECT * FROM users WHERE age > 30", rows=rows)
    run(rec, "SELECT * FROM users WHERE age > 30", fail=True)
    for _ in range(3):
        run(rec, "SELECT * FROM orders WHERE total > 10", rows=None)
    run(rec, "SELECT * FROM empty WHERE id = 1", rows=0)

    by_table = {s.tables[0]: s for s in table.top(10)}
    users, orders, empty = by_table["users"], by_table["orders"], by_table["empty"]
    assert (users.calls, users.rows, users.rows_calls, users.mean_rows) == (5, 8, 2, 4.0)
    # no call knew its rows: unknown, not 0 (and last when ordered by rows)
    assert (orders.calls, orders.rows, orders.rows_calls, orders.mean_rows) == (3, None, 0, None)
    assert (empty.rows, empty.rows_calls, empty.mean_rows) == (0, 1, 0.0)
    assert orders.to_dict()["rows"] is None and orders.to_dict()["mean_rows"] is None
    assert users.to_dict()["mean_rows"] == 4.0
    assert [s.tables[0] for s in table.top(10, order_by="rows")][0] == "users"

    # what other processes report merges the same way; a snapshot of an older version
    # (no rows_calls) counted the rows of every successful call
    merged = StatsTable()
    merged.merge(json.loads(json.dumps(table.snapshot())))
    assert {s.tables[0]: (s.rows, s.rows_calls) for s in merged.top(10)} == {
        "users": (8, 2), "orders": (None, 0), "empty": (0, 1),
    }  # fmt: skip
    older = [dict(entry) for entry in table.snapshot() if entry["tables"] == ["users"]]
    del older[0]["rows_calls"]
    again = StatsTable()
    again.merge(older)
    (stats,) = again.top()
    assert (stats.rows, stats.rows_calls) == (8, 4)


def test_top_orders_by_each_key_and_rejects_unknown_keys():
    table = StatsTable()
    specs = {
        # sql: (durations, rows, errors)
        "SELECT * FROM a": ([0.5], 1, 0),  # highest total, max and mean
        "SELECT * FROM b": ([0.01] * 20, 100, 0),  # most calls and rows
        "SELECT * FROM c": ([0.02, 0.03], 1, 2),  # most errors
    }
    for sql, (durations, rows, errors) in specs.items():
        for i, duration in enumerate(durations):
            failed = i < errors
            event = event_for(sql, duration, rows=None if failed else rows)
            if failed:
                event = dataclasses.replace(event, error=dbsight.QueryError("PgError", "42P01"))
            table.record(event)

    def first(order_by: str) -> str:
        return table.top(1, order_by)[0].normalized

    assert first("total_time") == "SELECT * FROM a"
    assert first("mean_time") == "SELECT * FROM a"
    assert first("max_time") == "SELECT * FROM a"
    assert first("p95") == "SELECT * FROM a"
    assert first("calls") == "SELECT * FROM b"
    assert first("rows") == "SELECT * FROM b"
    assert first("errors") == "SELECT * FROM c"
    assert [s.normalized for s in table.top(2)] == ["SELECT * FROM a", "SELECT * FROM b"]
    assert set(ORDER_BY) == {
        "total_time", "mean_time", "calls", "rows", "errors", "max_time", "p95"
    }
    with pytest.raises(ValueError) as excinfo:
        table.top(5, order_by="duration")
    for allowed in ORDER_BY:
        assert allowed in str(excinfo.value)


def test_memory_is_bounded_and_the_least_significant_entries_are_evicted():
    table = StatsTable(max_fingerprints=20)
    heavy = event_for("SELECT * FROM heavy", 5.0)
    table.record(heavy)
    for i in range(200):
        table.record(event_for(f"SELECT * FROM {name(i)}", 0.001))
    assert len(table) <= 20
    assert table.evictions >= 180
    assert heavy.fingerprint in table
    # amortised: one eviction pass makes room for a batch of new fingerprints
    assert table.evictions % table._evict_batch == 0


def test_eviction_ties_go_to_the_oldest():
    table = StatsTable(max_fingerprints=10)
    events = [event_for(f"SELECT * FROM {name(i)}", 0.001) for i in range(10)]
    for i, event in enumerate(events):
        table.record(dataclasses.replace(event, started_at=1000.0 + i))
    table.record(event_for("SELECT * FROM newcomer", 0.001))
    assert events[0].fingerprint not in table
    assert events[9].fingerprint in table
    assert table.evictions == 1


def test_snapshot_is_json_and_merging_two_tables_equals_one_table():
    rng = random.Random(3)
    one, left, right = StatsTable(), StatsTable(), StatsTable()
    templates = [
        event_for(f"SELECT * FROM {name(i)} WHERE id = 1", 0.001, route=f"/r{i}") for i in range(5)
    ]
    for n in range(2000):
        event = dataclasses.replace(
            rng.choice(templates),
            duration_s=rng.expovariate(200),
            started_at=1_000.0 + n,
        )
        one.record(event)
        (left if n % 3 else right).record(event)

    snapshots = [json.loads(json.dumps(left.snapshot())), json.loads(json.dumps(right.snapshot()))]
    merged = StatsTable()
    merged.merge(snapshots)

    expected = {s.fingerprint: s for s in one.top(10)}
    got = {s.fingerprint: s for s in merged.top(10)}
    assert got.keys() == expected.keys()
    for fingerprint, want in expected.items():
        have = got[fingerprint]
        assert have.calls == want.calls and have.rows == want.rows
        assert have.total_time_s == pytest.approx(want.total_time_s)
        assert (have.min_time_s, have.max_time_s) == (want.min_time_s, want.max_time_s)
        assert (have.p50_s, have.p95_s, have.p99_s) == (want.p50_s, want.p95_s, want.p99_s)
        assert (have.first_seen, have.last_seen) == (want.first_seen, want.last_seen)
        assert have.routes == want.routes

    # entries can be merged one by one too
    again = StatsTable()
    again.merge(left.snapshot() + right.snapshot())
    assert [s.calls for s in again.top(10)] == [s.calls for s in merged.top(10)]


def test_plan_summary_is_kept_and_reset_forgets_everything():
    table = StatsTable()
    rec = make_recorder(table)
    event = run(rec, "SELECT * FROM users WHERE id = 1")
    summary = {
        "node_type": "Seq Scan", "total_cost": 1.0, "estimated_rows": 1, "seq_scans": ["users"]
    }
    assert table.set_plan(event.fingerprint, summary)
    assert table.get(event.fingerprint).plan_summary == summary
    assert not table.set_plan("no-such-fingerprint", summary)
    table.reset()
    assert len(table) == 0 and table.top() == [] and table.get(event.fingerprint) is None


def test_concurrent_threads_lose_no_updates():
    table = StatsTable()
    rec = make_recorder(table)
    event = run(rec, "SELECT * FROM users WHERE id = 1")
    table.reset()
    threads = [
        threading.Thread(target=lambda: [table.record(event) for _ in range(5000)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (stats,) = table.top()
    assert stats.calls == 40_000 and stats.rows == 40_000


def test_module_level_top_and_reset_use_the_current_runtime(fresh_runtime):
    runtime = dbsight.configure(dbsight.Settings(tracing_enabled=False))
    recorder = fresh_runtime.recorder
    recorder.finish(recorder.start("SELECT * FROM accounts WHERE id = 7", "postgresql", "test"))
    (stats,) = dbsight.stats.top(5, order_by="calls")
    assert stats.tables == ("accounts",)
    assert runtime.stats.top(5)[0].fingerprint == stats.fingerprint
    dbsight.stats.reset()
    assert dbsight.stats.top() == []


@pytest.mark.parametrize("locked", [False, True])
def test_concurrent_records_and_reads_lose_nothing(locked):
    table = StatsTable()
    rec = make_recorder(StatsTable())
    event = run(rec, "SELECT * FROM users WHERE id = 1")
    observe_all = table._observe_all_locked if locked else table.observe_all
    threads, per_thread = 8, 3_000
    # distinct durations, routes and databases, so buckets and keys are created concurrently
    events = [
        dataclasses.replace(
            event, duration_s=1e-4 * (1.04 ** (i % 200)), route=f"/r{i % 5}", database=f"d{i % 3}"
        )
        for i in range(per_thread)
    ]
    errors: list[Exception] = []

    def work(offset):
        try:
            for i in range(0, per_thread, 10):  # batches of ten, as the recorder hands them
                observe_all([events[(i + j + offset) % per_thread] for j in range(10)])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def read():
        try:
            for _ in range(200):
                table.top(5, order_by="p95")
                json.dumps(table.snapshot())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    run_at_once([*(functools.partial(work, n * 7) for n in range(threads)), read])
    assert errors == []
    (stats,) = table.top()
    expected = threads * per_thread
    assert stats.calls == expected and stats.rows == expected
    assert sum(stats.routes.values()) == expected
    assert set(stats.databases) == {"d0", "d1", "d2"}
    (snapshot,) = table.snapshot()
    assert sum(snapshot["histogram"]["counts"].values()) == expected
    assert stats.total_time_s == pytest.approx(sum(e.duration_s for e in events) * threads)
    assert stats.min_time_s == min(e.duration_s for e in events)
    assert stats.max_time_s == max(e.duration_s for e in events)


def test_free_threaded_builds_record_under_the_lock(monkeypatch):
    from dbsight.stats import _table

    monkeypatch.setattr(_table, "_FREE_THREADED", True)
    table = StatsTable()
    assert table.observe_all == table._observe_all_locked
    rec = make_recorder(table)
    table.record(dataclasses.replace(run(Recorder(), "SELECT * FROM users WHERE id = 1"), route="/u"))
    run(rec, "SELECT * FROM users WHERE id = 2", fail=True)
    (stats,) = table.top()
    assert (stats.calls, stats.errors, stats.rows, stats.routes) == (2, 1, 1, {"/u": 1})


def test_one_batch_with_runs_of_a_fingerprint_counts_every_statement_where_it_belongs():
    """A batch folds runs of one fingerprint (its entry found once per run) between other
    fingerprints, with the database changing within a run and coming back to one seen."""
    a = "SELECT * FROM users WHERE id = 1"
    b = "SELECT * FROM orders WHERE id = 1"
    plan = [(a, "d1"), (a, "d1"), (a, "d2"), (b, "d1"), (a, "d1"), (a, "d3"), (b, "d1")]
    table = StatsTable()
    table.observe_all([event_for(sql, 0.001, database=db) for sql, db in plan])
    by_text = {stats.normalized: stats for stats in table.top()}
    users, orders = by_text[event_for(a, 0.001).normalized], by_text[event_for(b, 0.001).normalized]
    assert (users.calls, set(users.databases)) == (5, {"d1", "d2", "d3"})
    assert (orders.calls, set(orders.databases)) == (2, {"d1"})


def test_resize_keeps_the_entries_and_a_smaller_bound_evicts_the_least_significant():
    table = StatsTable(max_fingerprints=20)
    for i in range(15):
        table.record(event_for(f"SELECT * FROM {name(i)}", 0.001 * (i + 1)))
    table.resize(100)
    assert len(table) == 15 and table.max_fingerprints == 100
    table.resize(10)
    assert len(table) == 10 and table.evictions == 5
    kept = {stats.normalized for stats in table.top(20)}
    assert kept == {f"SELECT * FROM {name(i)}" for i in range(5, 15)}
    with pytest.raises(ValueError):
        table.resize(0)


def test_statistics_survive_a_reconfiguration(fresh_runtime, tmp_path):
    from sqlalchemy import create_engine, text

    def calls() -> dict[str, int]:
        return {stats.normalized: stats.calls for stats in dbsight.stats.top(50)}

    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    handle = dbsight.instrument(engine)
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)"))
            for i in range(3):
                conn.execute(text("INSERT INTO orders (total) VALUES (:total)"), {"total": i})
            conn.execute(text("SELECT count(*) FROM orders")).scalar()
        before = calls()
        assert before["INSERT INTO orders (total) VALUES ($1)"] == 3

        dbsight.configure(dbsight.Settings(tracing_enabled=False, slow_query_threshold_ms=50))
        assert calls() == before
        with engine.connect() as conn:
            conn.execute(text("INSERT INTO orders (total) VALUES (:total)"), {"total": 9})
        assert calls()["INSERT INTO orders (total) VALUES ($1)"] == 4

        dbsight.configure(dbsight.Settings(tracing_enabled=False, stats_max_fingerprints=10))
        assert dbsight.get_runtime().stats.max_fingerprints == 10
        assert calls()["INSERT INTO orders (total) VALUES ($1)"] == 4

        dbsight.configure(dbsight.Settings(stats_enabled=False))  # nothing counted: none shown
        assert calls() == {}
    finally:
        handle.uninstrument()
        engine.dispose()


def test_totals_count_every_statement_evicted_ones_too():
    table = StatsTable(max_fingerprints=10)
    rec = make_recorder(table)
    for i in range(30):
        run(rec, f"SELECT * FROM {name(i)}", rows=2)
    run(rec, "SELECT * FROM missing", fail=True)
    totals = table.totals()
    assert table.evictions > 0
    assert totals.fingerprints == len(table) <= 10
    assert (totals.calls, totals.errors, totals.rows) == (31, 1, 60)
    listed = table.top(3)
    assert totals.total_time_s > sum(stats.total_time_s for stats in listed)
    table.reset()
    assert table.totals() == dbsight.stats.StatsTotals()


def test_durations_past_the_exact_samples_reach_their_buckets_in_folds_and_on_reading():
    """Past `EXACT_SAMPLES` calls a duration is held in the entry's ``pending`` and goes into
    its bucket `PENDING` at a time, or when the entry is read: the histogram read at any
    point counts every duration in the bucket `bucket_index` gives it, the smallest (at or
    below 1 ns) and one beyond the fold's array of buckets (years) included."""
    from dbsight.stats._histogram import EXACT_SAMPLES, bucket_counts, decode
    from dbsight.stats._table_fold import PENDING

    table = StatsTable()
    event = event_for("SELECT * FROM users WHERE id = 1", 0.001)
    unusual = [0.0, 1e-12, 1e-9, 3e9, 1e-4 * 1.04**7]
    durations = [
        unusual[i // 97 % len(unusual)] if i % 97 == 0 else 1e-5 * (1.04 ** (i % 300))
        for i in range(EXACT_SAMPLES + 2 * PENDING + 300)
    ]
    seen: list[float] = []
    for stop in (EXACT_SAMPLES + 10, EXACT_SAMPLES + PENDING + 5, len(durations)):
        batch = durations[len(seen) : stop]
        for start in range(0, len(batch), 64):  # the recorder's batches
            table.observe_all(
                [dataclasses.replace(event, duration_s=d) for d in batch[start : start + 64]]
            )
        seen += batch
        (entry,) = table._entries.values()
        assert len(entry.pending) < PENDING  # (folded when it had that many)
        (snapshot,) = table.snapshot()
        assert snapshot["calls"] == len(seen)
        assert decode(snapshot["histogram"]["counts"]) == bucket_counts(seen)
        assert not entry.pending  # (read: all in the buckets)
    assert table.top()[0].max_time_s == 3e9
