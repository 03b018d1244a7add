"""The slow-query log: JSON lines, rotation, and EXPLAIN plans from real PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import psycopg
import pytest

from dbsight.core import Recorder, Settings, request_scope
from dbsight.export import SlowQuerySink, summarize_plan
from dbsight.export import slowlog
from dbsight.stats import StatsSink, StatsTable

SECRET = "s3cr3t-literal"
TINY_MS = 0.000001  # every statement is slow


class PsycopgThreadExplainer:
    """A minimal test-only `Explainer`: EXPLAIN on a connection of its own, in a thread."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.calls: list[tuple[str, object, float]] = []

    def explain(self, sql, params, timeout_s, done):
        self.calls.append((sql, params, timeout_s))

        def run():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"SET statement_timeout = {max(1, int(timeout_s * 1000))}")
                    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
            except Exception as exc:
                done(None, f"{type(exc).__name__}: {exc}")
            else:
                done(row[0], None)

        threading.Thread(target=run, daemon=True).start()


class SilentExplainer:
    """Accepts the request and never calls back."""

    def __init__(self) -> None:
        self.calls = 0

    def explain(self, sql, params, timeout_s, done):
        self.calls += 1


class BrokenExplainer:
    def explain(self, sql, params, timeout_s, done):
        raise ConnectionError("cannot reach the database")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(path: Path, count: int, deadline_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        lines = read_lines(path)
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"expected {count} lines in {path}, got {read_lines(path)}")


def make(tmp_path: Path, **settings):
    config = Settings(
        slow_query_threshold_ms=TINY_MS, slow_query_log=tmp_path / "slow.jsonl", **settings
    )
    table = StatsTable()
    sink = SlowQuerySink(config, stats=table)
    rec = Recorder(config)
    rec.add_observer(StatsSink(table))
    rec.add_observer(sink)
    return rec, sink, table, config.slow_query_log


def test_slow_queries_become_json_lines_without_literals(tmp_path):
    rec, sink, _, path = make(tmp_path, service_name="shop")
    sql = f"SELECT * FROM users WHERE email = '{SECRET}'"
    with request_scope("req-9", route="/users", trace_id="e" * 32, span_id="f" * 16):
        event = rec.finish(rec.start(sql, "postgresql", "psycopg", database="main"), rows=4)
    ctx = rec.start("DELETE FROM users WHERE id = 1", "postgresql", "psycopg")
    failed = rec.fail(ctx, psycopg.errors.ForeignKeyViolation("violates"))
    sink.close()

    ok, error = read_lines(path)
    assert ok["fingerprint"] == event.fingerprint
    assert ok["normalized"] == event.normalized
    assert ok["operation"] == "select" and ok["tables"] == ["users"]
    assert ok["duration_ms"] == pytest.approx(event.duration_s * 1000, abs=0.001)
    assert ok["threshold_ms"] == TINY_MS
    assert ok["rows"] == 4 and ok["outcome"] == "ok" and ok["sqlstate"] is None
    assert ok["system"] == "postgresql" and ok["source"] == "psycopg"
    assert ok["route"] == "/users" and ok["request_id"] == "req-9"
    assert ok["trace_id"] == "e" * 32 and ok["span_id"] == "f" * 16
    assert ok["app"] == "shop" and ok["database"] == "main"
    assert ok["ts"].endswith("Z")
    assert "sql" not in ok and "params" not in ok and "plan" not in ok
    assert SECRET not in path.read_text()
    assert error["outcome"] == "error" and error["sqlstate"] == failed.error.sqlstate == "23503"


def test_bodies_are_written_only_when_enabled(tmp_path):
    rec, sink, _, path = make(tmp_path, include_query_bodies=True)
    sql = "SELECT * FROM users WHERE email = %s"
    rec.finish(rec.start(sql, "postgresql", "psycopg", params=(SECRET,)), rows=1)
    sink.close()
    (line,) = read_lines(path)
    assert line["sql"] == sql and line["params"] == [SECRET]


def test_fast_queries_are_not_written(tmp_path):
    config = Settings(slow_query_threshold_ms=60_000, slow_query_log=tmp_path / "slow.jsonl")
    sink = SlowQuerySink(config)
    rec = Recorder(config)
    rec.add_observer(sink)
    rec.finish(rec.start("SELECT 1", "postgresql", "test"))
    sink.close()
    assert not (tmp_path / "slow.jsonl").exists()


def test_without_a_file_lines_go_to_the_dbsight_slow_logger(caplog):
    config = Settings(slow_query_threshold_ms=TINY_MS)
    rec = Recorder(config)
    rec.add_observer(SlowQuerySink(config))
    with caplog.at_level(logging.WARNING, logger="dbsight.slow"):
        rec.finish(rec.start("SELECT * FROM users", "postgresql", "test"), rows=1)
    (record,) = [r for r in caplog.records if r.name == "dbsight.slow"]
    assert record.levelno == logging.WARNING
    assert json.loads(record.getMessage())["tables"] == ["users"]


def test_the_file_rotates_by_size_and_every_line_parses(tmp_path):
    rec, sink, _, path = make(
        tmp_path, slow_query_log_max_bytes=1024, slow_query_log_backups=2
    )
    threads = [
        threading.Thread(
            target=lambda n=n: [
                rec.finish(rec.start(f"SELECT * FROM t{n} WHERE id = {i}", "postgresql", "test"))
                for i in range(50)
            ]
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()

    files = [path, path.with_name("slow.jsonl.1"), path.with_name("slow.jsonl.2")]
    assert all(f.exists() for f in files)
    assert not path.with_name("slow.jsonl.3").exists()
    for f in files:
        assert f.stat().st_size <= 1024
        lines = read_lines(f)
        assert lines and all(line["operation"] == "select" for line in lines)


def test_zero_backups_still_bounds_the_file(tmp_path):
    rec, sink, _, path = make(tmp_path, slow_query_log_max_bytes=1024, slow_query_log_backups=0)
    for i in range(50):
        rec.finish(rec.start(f"SELECT * FROM t WHERE id = {i}", "postgresql", "test"))
    sink.close()
    assert path.stat().st_size <= 1024 and read_lines(path)
    assert list(tmp_path.iterdir()) == [path]


@pytest.fixture
def items_db(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int, name text)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g")
        conn.execute("ANALYZE items")
    return pg_dsn


def run_select(rec, conn, explainer, name: str):
    sql = "SELECT id, name FROM items WHERE name = %s"
    ctx = rec.start(sql, "postgresql", "psycopg", (name,), explainer=explainer)
    rows = conn.execute(sql, (name,)).fetchall()
    return rec.finish(ctx, rows=len(rows))


def test_slow_selects_are_explained_once_per_interval(tmp_path, items_db):
    rec, sink, table, path = make(tmp_path)
    explainer = PsycopgThreadExplainer(items_db)
    with psycopg.connect(items_db, autocommit=True) as conn:
        event = run_select(rec, conn, explainer, SECRET)
        (line,) = wait_for_lines(path, 1)
        run_select(rec, conn, explainer, "item 5")  # same fingerprint, inside the interval
        ctx = rec.start("INSERT INTO items VALUES (1001, 'x')", "postgresql", "psycopg",
                        explainer=explainer)
        conn.execute("INSERT INTO items VALUES (1001, 'x')")
        rec.finish(ctx, rows=1)
    sink.close()

    assert len(explainer.calls) == 1
    sql, params, timeout_s = explainer.calls[0]
    assert params == (SECRET,) and timeout_s == pytest.approx(2.0)
    assert line["fingerprint"] == event.fingerprint
    summary = line["plan_summary"]
    assert summary["node_type"] == "Seq Scan"
    assert summary["seq_scans"] == ["items"]
    assert summary["total_cost"] > 0 and summary["estimated_rows"] >= 1
    assert line["plan"][0]["Plan"]["Relation Name"] == "items"
    assert line["plan"][0]["Plan"]["Filter"] == "(name = '?'::text)"  # the parameter, masked
    assert table.get(event.fingerprint).plan_summary == summary
    second, insert = read_lines(path)[1:]
    assert "plan" not in second and "plan_error" not in second
    assert insert["operation"] == "insert" and "plan" not in insert
    assert SECRET not in path.read_text()


def test_explain_failure_is_reported_on_the_line(tmp_path, items_db):
    rec, sink, _, path = make(tmp_path)
    with psycopg.connect(items_db, autocommit=True) as conn:
        sql = "SELECT id FROM items WHERE id = %s"
        ctx = rec.start(sql, "postgresql", "psycopg", (1,),
                        explainer=PsycopgThreadExplainer(items_db + "_no_such_db"))
        conn.execute(sql, (1,))
        rec.finish(ctx, rows=1)
        (line,) = wait_for_lines(path, 1)
    sink.close()
    assert "plan" not in line and "does not exist" in line["plan_error"]


def test_a_missing_callback_costs_the_plan_not_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(slowlog, "PLAN_GRACE_S", 0.05)
    rec, sink, _, path = make(tmp_path, explain_timeout_ms=10)
    explainer = SilentExplainer()
    rec.finish(rec.start("SELECT * FROM users", "postgresql", "test", explainer=explainer))
    (line,) = wait_for_lines(path, 1)
    assert explainer.calls == 1
    assert line["plan_error"] == "EXPLAIN did not finish in time"
    deadline = time.monotonic() + 10
    while sink._plans._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.pending_plans == 0 and sink._plans._thread is None  # nothing left behind
    sink.close()


def test_closing_writes_what_is_still_waiting_for_a_plan(tmp_path):
    rec, sink, _, path = make(tmp_path)
    explainer = SilentExplainer()
    rec.finish(rec.start("SELECT * FROM users", "postgresql", "test", explainer=explainer))
    assert read_lines(path) == [] and sink.pending_plans == 1
    sink.close()
    (line,) = read_lines(path)
    assert "reconfigured" in line["plan_error"]


def test_pending_plans_are_bounded(tmp_path):
    rec, sink, _, path = make(tmp_path)
    silent = SilentExplainer()
    for i in range(slowlog.MAX_PENDING_PLANS + 3):
        sql = f"SELECT * FROM t_{chr(ord('a') + i)}"  # distinct fingerprints
        rec.finish(rec.start(sql, "postgresql", "test", explainer=silent))
    assert silent.calls == slowlog.MAX_PENDING_PLANS
    assert sink.pending_plans == slowlog.MAX_PENDING_PLANS
    lines = read_lines(path)
    assert len(lines) == 3 and all("too many" in line["plan_error"] for line in lines)
    sink.close()
    assert len(read_lines(path)) == slowlog.MAX_PENDING_PLANS + 3


def test_a_broken_explainer_costs_the_plan_not_the_line(tmp_path):
    rec, sink, _, path = make(tmp_path)
    rec.finish(rec.start("SELECT * FROM other", "postgresql", "test", explainer=BrokenExplainer()))
    (line,) = read_lines(path)
    assert "ConnectionError" in line["plan_error"]
    assert rec.failures.counts == {} and sink.pending_plans == 0
    sink.close()


def test_plans_keep_the_parameters_only_with_query_bodies(tmp_path, items_db):
    rec, sink, _, path = make(tmp_path, include_query_bodies=True)
    with psycopg.connect(items_db, autocommit=True) as conn:
        run_select(rec, conn, PsycopgThreadExplainer(items_db), SECRET)
        (line,) = wait_for_lines(path, 1)
    sink.close()
    assert line["plan"][0]["Plan"]["Filter"] == f"(name = '{SECRET}'::text)"


def test_redact_plan_masks_constants_but_not_names_or_placeholders():
    plan = [{"Plan": {
        "Node Type": "Index Scan", "Relation Name": "t1", "Index Name": "t1_2024_idx",
        "Total Cost": 8.3,
        "Index Cond": "((id = 42) AND (tag = 'it''s'::text) AND (score > -1.5e3) AND (x = $1))",
        "Filter": "(created > '2024-01-01'::date)",
    }}]
    node = slowlog.redact_plan(plan)[0]["Plan"]
    assert node["Index Cond"] == "((id = ?) AND (tag = '?'::text) AND (score > ?) AND (x = $1))"
    assert node["Filter"] == "(created > '?'::date)"
    assert node["Relation Name"] == "t1" and node["Index Name"] == "t1_2024_idx"
    assert node["Total Cost"] == 8.3


def test_plan_summary_walks_nested_plans():
    plan = [{"Plan": {
        "Node Type": "Hash Join", "Total Cost": 42.5, "Plan Rows": 10,
        "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "orders", "Plans": []},
            {"Node Type": "Hash", "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "users"},
                {"Node Type": "Index Scan", "Relation Name": "items"},
            ]},
        ],
    }}]
    assert summarize_plan(plan) == {
        "node_type": "Hash Join", "total_cost": 42.5, "estimated_rows": 10,
        "seq_scans": ["orders", "users"], "analyzed": False, "findings": [],
    }
    assert summarize_plan(json.dumps(plan)) == summarize_plan(plan)


def test_recent_keeps_the_last_slow_records_newest_first(tmp_path):
    settings = Settings(slow_query_log=tmp_path / "slow.jsonl", slow_query_threshold_ms=5.0)
    sink = slowlog.SlowQuerySink(settings)
    rec = Recorder(settings)
    rec.add_observer(sink)
    for i in range(slowlog.RECENT_SLOW + 5):
        ctx = rec.start(f"SELECT {i} FROM t{i % 3}x", "postgresql", "test")
        ctx.started -= 0.01  # 10 ms: over the threshold whatever the clock's resolution
        rec.finish(ctx, 1)
    recent = sink.recent()
    assert len(recent) == slowlog.RECENT_SLOW
    assert recent[0]["normalized"] == "SELECT $1 FROM t0x"  # the last one: i = 54
    assert all("sql" not in r for r in recent)
    sink.close()


def test_the_newest_planned_run_outlives_the_recent_ones(tmp_path, items_db):
    from dbsight.web._statement import statement_slow_runs

    rec, sink, _, path = make(tmp_path)
    explainer = PsycopgThreadExplainer(items_db)
    with psycopg.connect(items_db, autocommit=True) as conn:
        event = run_select(rec, conn, explainer, "item 1")
        wait_for_lines(path, 1)
        # inside the EXPLAIN interval: planless runs of it push the planned one out
        for i in range(slowlog.RECENT_SLOW):
            run_select(rec, conn, explainer, f"item {i}")
        ctx = rec.start("SELECT id FROM items WHERE id = %s", "postgresql", "psycopg", (1,))
        conn.execute("SELECT id FROM items WHERE id = %s", (1,))
        rec.finish(ctx, rows=1)  # another statement, without an explainer: no plan
    sink.close()

    recent, planned = sink.recent(), sink.planned()
    assert all(r.get("plan") is None for r in recent)
    assert [p["fingerprint"] for p in planned] == [event.fingerprint]
    assert planned[0]["plan"][0]["Plan"]["Relation Name"] == "items"
    runs = statement_slow_runs(recent, planned, event.fingerprint)
    assert len(runs) == slowlog.RECENT_SLOW  # 49 recent of it, then its planned one
    assert runs[-1] is planned[0] and all(r.get("plan") is None for r in runs[:-1])
    # while a recent run of it carries the plan, it is not listed twice
    assert statement_slow_runs(planned, planned, event.fingerprint) == planned


def test_planned_runs_are_kept_for_the_last_fingerprints(tmp_path, monkeypatch):
    monkeypatch.setattr(slowlog, "PLANNED_KEPT", 3)
    sink = slowlog.SlowQuerySink(Settings(slow_query_log=tmp_path / "slow.jsonl"))
    for i in range(5):
        sink._write({"fingerprint": f"f{i}", "ts": str(i), "plan": [{"Plan": {}}]})
        sink._write({"fingerprint": f"f{i}", "ts": str(i), "plan_error": "timed out"})
    sink._write({"fingerprint": "f2", "ts": "5", "plan": [{"Plan": {}}]})
    assert [(p["fingerprint"], p["ts"]) for p in sink.planned()] == [
        ("f2", "5"), ("f4", "4"), ("f3", "3")
    ]
    sink.close()
