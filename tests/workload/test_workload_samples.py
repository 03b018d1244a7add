"""The parameter sampler: real statements per fingerprint, in memory only, reservoir-sampled
so the values that dominate the traffic dominate the samples, within fixed bounds."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import pq

import dbsight
from dbsight._runtime import parameter_samples
from dbsight.core import Recorder, Settings
from dbsight.stats import ParameterSamples
from dbsight.web._reports import summary
from dbsight.workload import Sample, from_stats

SECRET = "s3cret-customer-name"


def _table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, note text)")
        conn.execute(
            "INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN 'done' ELSE 'open' END, '' "
            "FROM generate_series(1, 200) g"
        )


def test_instrumented_clients_leave_real_values_in_memory_only(
    pg_dsn: str, configure: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table(pg_dsn)
    slow_log = tmp_path / "slow.jsonl"
    # every statement slow and logged: nothing of what they carry may reach a sink
    runtime = configure(
        slow_query_threshold_ms=0.001, slow_query_log=slow_log, log_sample_rate=1.0,
        explain_slow_queries=False,
    )
    caplog.set_level(logging.DEBUG, logger="dbsight")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbsight.instrument(conn)
        for i in range(300):
            status = "done" if i % 10 == 0 else "open"  # 'open' is 90 % of the traffic
            conn.execute("SELECT id FROM orders WHERE status = %s LIMIT 5", (status,))
        conn.execute("UPDATE orders SET note = %(note)s WHERE id = %(id)s", {"note": SECRET, "id": 1})
        conn.execute(f"SELECT id FROM orders WHERE note = '{SECRET}'")

    async def through_asyncpg() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            dbsight.instrument(conn)
            await conn.fetch("SELECT * FROM orders WHERE id = $1 AND note <> $2", 3, SECRET)
        finally:
            await conn.close()

    asyncio.run(through_asyncpg())
    runtime.flush(5.0, "test")

    workload = from_stats()
    by_text = {s.normalized: s for s in workload}
    status = by_text["SELECT id FROM orders WHERE status = $1 LIMIT $2"]
    assert len(status.samples) == 8  # advice_samples' default
    # the text as sent (its literal 5 in it), psycopg's %s turned into the server's $1
    assert all(s.sql == "SELECT id FROM orders WHERE status = $1 LIMIT 5" for s in status.samples)
    assert {s.params for s in status.samples} <= {("open",), ("done",)}
    update = by_text["UPDATE orders SET note = $1 WHERE id = $2"]
    assert update.samples == [Sample("UPDATE orders SET note = $1 WHERE id = $2", (SECRET, "1"))]
    literal = by_text["SELECT id FROM orders WHERE note = $1"]
    assert literal.samples == [Sample(f"SELECT id FROM orders WHERE note = '{SECRET}'")]
    fetched = by_text["SELECT * FROM orders WHERE id = $1 AND note <> $2"]
    assert fetched.samples == [
        Sample("SELECT * FROM orders WHERE id = $1 AND note <> $2", ("3", SECRET))
    ]

    # ... and nowhere else: the summary, the slow-query log, the log records
    exported = json.dumps(summary(runtime, limit=500), default=str)
    assert "SELECT id FROM orders WHERE status" in exported and SECRET not in exported
    assert "WHERE status" in slow_log.read_text() and SECRET not in slow_log.read_text()
    assert caplog.records and not any(SECRET in r.getMessage() or SECRET in str(r.__dict__)
                                      for r in caplog.records)
    assert SECRET not in json.dumps(workload.to_dict())
    assert SECRET not in repr(workload) and SECRET not in str(update)  # printed or logged

    # every sample runs on the server as it is, its values as text (as the advisor plans it)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.pgconn.exec_(b"BEGIN")  # the UPDATE's sample is rolled back below
        for statement in workload:
            for sample in statement.samples:
                params = [None if p is None else p.encode() for p in sample.params or ()]
                result = conn.pgconn.exec_params(sample.sql.encode(), params)
                assert result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK), (
                    sample.sql, result.error_message
                )
        conn.pgconn.exec_(b"ROLLBACK")


def test_batches_and_unknown_values_are_not_sampled(
    pg_dsn: str, configure: Callable[..., Any]
) -> None:
    _table(pg_dsn)
    configure()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbsight.instrument(conn, explain=False)  # no EXPLAIN: the values are not kept
        conn.execute("SELECT id FROM orders WHERE id = %s", (4,))
        conn.execute("SELECT count(*) FROM orders")  # no placeholders: its text is its values
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbsight.instrument(conn)
        conn.cursor().executemany(
            "INSERT INTO orders (id, status) VALUES (%s, %s)", [(1000 + i, "new") for i in range(5)]
        )
    by_text = {s.normalized: s for s in from_stats()}
    assert by_text["SELECT id FROM orders WHERE id = $1"].samples == []
    assert by_text["SELECT count(*) FROM orders"].samples == [Sample("SELECT count(*) FROM orders")]
    batch = by_text["INSERT INTO orders (id, status) VALUES ($1, $2)"]
    assert batch.calls >= 1 and batch.samples == []


def test_the_setting_sizes_or_turns_off_the_sampler(
    pg_dsn: str, configure: Callable[..., Any]
) -> None:
    _table(pg_dsn)
    runtime = configure(advice_samples=3)
    sampler = parameter_samples(runtime)
    assert sampler is not None and sampler.per_fingerprint == 3
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbsight.instrument(conn)
        for i in range(50):
            conn.execute("SELECT status FROM orders WHERE id = %s", (i,))
    (statement,) = [s for s in from_stats() if s.normalized.startswith("SELECT status")]
    assert len(statement.samples) == 3
    # reconfigured: the same sampler, bounded anew
    runtime = configure(advice_samples=2)
    assert parameter_samples(runtime) is sampler and sampler.per_fingerprint == 2
    (statement,) = [s for s in from_stats() if s.normalized.startswith("SELECT status")]
    assert len(statement.samples) == 2
    dbsight.stats.reset()  # forgetting the statistics forgets their samples
    assert len(sampler) == 0
    runtime = configure(advice_samples=0)
    assert parameter_samples(runtime) is None
    assert all(not s.samples for s in from_stats())
    assert "advice_samples" in Settings.model_fields
    assert Settings.model_fields["advice_samples"].description


def _recorder(sampler: ParameterSamples) -> Recorder:
    recorder = Recorder(Settings(tracing_enabled=False))
    recorder.add_observer(sampler)
    return recorder


_EXPLAINER = object()  # stands for a connection's explainer: its statements' values are kept


def _run(recorder: Recorder, sql: str, params: Any = None, system: str = "postgresql") -> None:
    ctx = recorder.start(sql, system, "test", params, explainer=_EXPLAINER)
    recorder.finish(ctx, 1)


def test_the_reservoir_follows_the_traffic_and_rarely_samples() -> None:
    k, calls = 100, 200_000
    sampler = ParameterSamples(k, seed=7)
    recorder = _recorder(sampler)
    for i in range(calls):
        _run(recorder, "SELECT * FROM t WHERE kind = $1", ("common" if i % 10 else "rare",))
    (samples,) = sampler.snapshot().values()
    counts = Counter(params for _, params in samples)
    assert len(samples) == k
    assert 75 <= counts[("common",)] <= 98  # 90 % of the calls: about 90 of 100
    # algorithm L: about k (1 + ln(n / k)) calls taken in all, not one in every few
    expected = k * (1 + math.log(calls / k))
    assert sampler.taken <= 1.5 * expected


def test_bounds_on_fingerprints_and_bytes() -> None:
    sampler = ParameterSamples(4, max_fingerprints=50, max_bytes=10_000, seed=1)
    recorder = _recorder(sampler)
    for table in range(120):
        for i in range(3 + table % 5):
            _run(recorder, f"SELECT * FROM t{table} WHERE id = $1", (i,))
    assert len(sampler) <= 50
    _run(recorder, "SELECT * FROM big WHERE doc = $1", ("x" * 20_000,))  # past MAX_SAMPLE_BYTES
    assert sampler.samples(next(iter(sampler.snapshot())))  # others still kept
    for i in range(200):
        _run(recorder, f"SELECT * FROM wide{i} WHERE a = $1", ("y" * 900,))
    assert sampler.bytes <= 10_000
    assert sum(
        len(sql) + sum(len(p or "") for p in params or ())
        for samples in sampler.snapshot().values() for sql, params in samples
    ) == sampler.bytes
    # statements of other systems and transaction control are counted, never sampled
    _run(recorder, "SELECT * FROM m WHERE id = %s", (1,), system="mysql")
    _run(recorder, "BEGIN")
    assert not any("FROM m " in sql or sql == "BEGIN"
                   for samples in sampler.snapshot().values() for sql, _ in samples)
