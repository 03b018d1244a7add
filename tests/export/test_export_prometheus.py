"""Prometheus metrics from real Recorder events, read back from the exposition text."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from threads_at_once import run_at_once

import dbsight
from dbsight.core import PoolUsage, QueryObserver, Recorder, Settings, pools
from dbsight.export import LabelGuard, PrometheusSink


class PgError(Exception):
    sqlstate = "23505"


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def setup(**settings) -> tuple[Recorder, PrometheusSink, CollectorRegistry]:
    registry = CollectorRegistry()
    config = Settings(**settings)
    rec = Recorder(config)
    sink = PrometheusSink(config, registry, recorder=rec)
    rec.add_observer(sink)
    return rec, sink, registry


def run(rec: Recorder, sql: str, fail: bool = False) -> None:
    ctx = rec.start(sql, "postgresql", "test")
    if fail:
        rec.fail(ctx, PgError("duplicate key"))
    else:
        rec.finish(ctx, rows=1)


def test_operations_durations_and_outcomes():
    rec, _, registry = setup(slow_query_threshold_ms=60_000)
    for user_id in range(3):
        run(rec, f"SELECT * FROM users WHERE id = {user_id}")
    run(rec, "INSERT INTO users (id) VALUES (1)", fail=True)

    samples = scrape(registry)
    select = {"system": "postgresql", "operation": "select", "table": "users"}
    insert = {"system": "postgresql", "operation": "insert", "table": "users"}
    assert value(samples, "db_client_operations_total", **select, outcome="ok") == 3
    assert value(samples, "db_client_operations_total", **select, outcome="error") == 0
    assert value(samples, "db_client_operations_total", **insert, outcome="error") == 1
    assert value(samples, "db_client_operation_duration_seconds_count", **select) == 3
    assert value(samples, "db_client_operation_duration_seconds_count", **insert) == 1
    assert value(samples, "db_client_operation_duration_seconds_bucket", **select, le="+Inf") == 3
    smallest = value(samples, "db_client_operation_duration_seconds_bucket", **select, le="0.0005")
    assert smallest is not None
    assert value(samples, "db_client_operation_duration_seconds_bucket", **select, le="10.0") == 3
    assert value(samples, "db_client_slow_operations_total", **select) == 0


def test_slow_operations_are_counted_at_the_threshold():
    rec, _, registry = setup(slow_query_threshold_ms=0.000001)
    run(rec, "SELECT * FROM orders")
    run(rec, "DELETE FROM orders WHERE id = 3", fail=True)
    samples = scrape(registry)
    labels = {"system": "postgresql", "table": "orders"}
    assert value(samples, "db_client_slow_operations_total", **labels, operation="select") == 1
    assert value(samples, "db_client_slow_operations_total", **labels, operation="delete") == 1


def test_table_label_is_guarded_against_cardinality_explosions():
    rec, _, registry = setup(metrics_max_label_values=3)
    for i in range(10):
        for _ in range(2):
            run(rec, f"SELECT * FROM t{i}")
    samples = scrape(registry)
    tables = {
        dict(labels)["table"]: v
        for (name, labels), v in samples.items()
        if name == "db_client_operations_total" and dict(labels)["outcome"] == "ok"
    }
    assert tables == {"t0": 2, "t1": 2, "t2": 2, "other": 14}


def test_label_guard_admits_the_first_values_then_other():
    guard = LabelGuard(2, overflow_cache=1)
    assert [guard(v) for v in ("a", "b", "c", "a", "d", "b", "e")] == [
        "a", "b", "other", "a", "other", "b", "other"
    ]
    assert guard.admitted == 2
    assert len(guard._seen) <= 3  # admitted values plus a bounded overflow cache


def test_pool_connections_and_observer_errors_are_read_at_scrape_time():
    rec, _, registry = setup()

    class Boom(QueryObserver):
        name = "boom"

        def after_query(self, ctx, event):
            raise RuntimeError("observer bug")

    rec.add_observer(Boom())
    usage = {"idle": 3, "used": 2}
    name = pools.register("orders-db", lambda: PoolUsage(usage["idle"], usage["used"], 10))
    unsized = pools.register("cache-db", lambda: PoolUsage(1, 0))
    try:
        run(rec, "SELECT 1")
        samples = scrape(registry)
        assert value(samples, "db_client_connections", pool=name, state="idle") == 3
        assert value(samples, "db_client_connections", pool=name, state="used") == 2
        assert value(samples, "db_client_connections_max", pool=name) == 10
        assert value(samples, "db_client_connections", pool=unsized, state="idle") == 1
        assert value(samples, "db_client_connections_max", pool=unsized) is None
        assert value(samples, "dbsight_observer_errors_total", observer="boom") == 1

        usage.update(idle=0, used=5)
        run(rec, "SELECT 1")
        samples = scrape(registry)
        assert value(samples, "db_client_connections", pool=name, state="used") == 5
        assert value(samples, "dbsight_observer_errors_total", observer="boom") == 2
    finally:
        pools.unregister(name)
        pools.unregister(unsized)
    assert value(scrape(registry), "db_client_connections", pool=name, state="idle") is None


def test_n_plus_one_counter_exists_and_counts_by_route():
    _, sink, registry = setup()
    assert "# TYPE db_client_n_plus_one_total counter" in generate_latest(registry).decode()
    sink.count_n_plus_one("/users/{id}")
    sink.count_n_plus_one("/users/{id}")
    sink.count_n_plus_one(None)
    samples = scrape(registry)
    assert value(samples, "db_client_n_plus_one_total", route="/users/{id}") == 2
    assert value(samples, "db_client_n_plus_one_total", route="") == 1


def test_close_unregisters_and_a_new_sink_can_take_the_registry():
    rec, sink, registry = setup()
    run(rec, "SELECT * FROM users")
    sink.close()
    sink.close()  # idempotent
    assert scrape(registry) == {}

    config = Settings()
    second = PrometheusSink(config, registry)
    # a sink that was never closed is replaced, not a "Duplicated timeseries" error
    third = PrometheusSink(config, registry)
    rec2 = Recorder(config)
    rec2.add_observer(third)
    run(rec2, "SELECT * FROM users")
    samples = scrape(registry)
    labels = {"system": "postgresql", "operation": "select", "table": "users", "outcome": "ok"}
    assert value(samples, "db_client_operations_total", **labels) == 1
    second.close()  # closing the replaced sink leaves the current one registered
    assert value(scrape(registry), "db_client_operations_total", **labels) == 1
    third.close()
    assert scrape(registry) == {}


def test_reconfiguring_on_one_registry_does_not_duplicate_timeseries(fresh_runtime):
    registry = CollectorRegistry(auto_describe=True)
    for _ in range(3):
        dbsight.configure(dbsight.Settings(tracing_enabled=False), registry=registry)
    recorder = fresh_runtime.recorder
    recorder.finish(recorder.start("SELECT * FROM users", "postgresql", "test"), rows=1)
    samples = scrape(registry)
    labels = {"system": "postgresql", "operation": "select", "table": "users", "outcome": "ok"}
    assert value(samples, "db_client_operations_total", **labels) == 1


def test_a_foreign_collector_with_the_same_name_still_fails_loudly():
    registry = CollectorRegistry()
    from prometheus_client import Counter

    Counter("db_client_operations_total", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusSink(Settings(), registry)
    # nothing half-registered is left behind
    assert [n for n, _ in scrape(registry) if n.startswith("db_client_operation_duration")] == []


def _event(rec: Recorder, sql: str, system: str = "postgresql", fail: bool = False):
    """An event from a Recorder that has no observers (so nothing is counted yet)."""
    ctx = rec.start(sql, system, "test")
    return rec.fail(ctx, PgError("x")) if fail else rec.finish(ctx, rows=1)


def test_histogram_buckets_match_prometheus_client_histogram():
    from dataclasses import replace

    from prometheus_client import Histogram

    from dbsight.export.prometheus import DURATION_BUCKETS

    registry = CollectorRegistry()
    config = Settings(slow_query_threshold_ms=100)
    sink = PrometheusSink(config, registry)
    reference = Histogram("ref", "reference", buckets=DURATION_BUCKETS, registry=registry)
    event = _event(Recorder(config), "SELECT * FROM users")
    durations = [0.0, 1e-9, *DURATION_BUCKETS, *(b * 1.0001 for b in DURATION_BUCKETS), 99.0]
    for duration in durations:
        sink.after_query(None, replace(event, duration_s=duration))
        reference.observe(duration)
    samples = scrape(registry)
    labels = {"system": "postgresql", "operation": "select", "table": "users"}
    for le in (*(str(b) for b in DURATION_BUCKETS), "+Inf"):
        ours = value(samples, "db_client_operation_duration_seconds_bucket", **labels, le=le)
        assert ours == value(samples, "ref_bucket", le=le), le
    assert value(samples, "db_client_operation_duration_seconds_count", **labels) == len(durations)
    assert value(samples, "db_client_operation_duration_seconds_sum", **labels) == pytest.approx(
        value(samples, "ref_sum")
    )
    slow = sum(1 for d in durations if d >= 0.1)
    assert value(samples, "db_client_slow_operations_total", **labels) == slow
    text = generate_latest(registry).decode()
    assert "# TYPE db_client_operations_total counter" in text
    assert "# TYPE db_client_operation_duration_seconds histogram" in text
    assert "# TYPE db_client_slow_operations_total counter" in text


def test_same_statement_on_two_systems_is_counted_per_system():
    rec, _, registry = setup()
    run(rec, "SELECT * FROM users")
    ctx = rec.start("SELECT * FROM users", "mysql", "test")
    rec.finish(ctx, rows=1)
    samples = scrape(registry)
    for system in ("postgresql", "mysql"):
        labels = {"system": system, "operation": "select", "table": "users", "outcome": "ok"}
        assert value(samples, "db_client_operations_total", **labels) == 1


@pytest.mark.parametrize("locked", [False, True])
def test_concurrent_updates_lose_no_increment(locked):
    registry = CollectorRegistry()
    config = Settings()
    sink = PrometheusSink(config, registry)
    rec = Recorder(config)
    ok, failed = _event(rec, "SELECT * FROM users"), _event(rec, "DELETE FROM users", fail=True)
    after_batch = sink._after_batch_locked if locked else sink.after_batch
    on_error = sink._on_error_locked if locked else sink.on_error
    threads, per_thread = 8, 5_000

    def work():
        for _ in range(per_thread):
            after_batch((ok,))
            on_error(None, failed)

    run_at_once([work] * threads)
    samples = scrape(registry)
    expected = threads * per_thread
    select = {"system": "postgresql", "operation": "select", "table": "users"}
    delete = {"system": "postgresql", "operation": "delete", "table": "users"}
    assert value(samples, "db_client_operations_total", **select, outcome="ok") == expected
    assert value(samples, "db_client_operations_total", **delete, outcome="error") == expected
    assert value(samples, "db_client_operation_duration_seconds_count", **select) == expected
    assert value(samples, "db_client_operation_duration_seconds_count", **delete) == expected
    by_code = {**delete, "sqlstate": "23505", "error_class": "23"}
    assert value(samples, "db_client_errors_total", **by_code) == expected


def test_free_threaded_builds_use_the_locked_hooks(monkeypatch):
    from dbsight.export import prometheus

    monkeypatch.setattr(prometheus, "_FREE_THREADED", True)
    rec, sink, registry = setup()
    assert sink.after_batch == sink._after_batch_locked
    assert sink.on_error == sink._on_error_locked
    run(rec, "SELECT * FROM users")
    run(rec, "SELECT * FROM users", fail=True)
    samples = scrape(registry)
    labels = {"system": "postgresql", "operation": "select", "table": "users"}
    assert value(samples, "db_client_operations_total", **labels, outcome="ok") == 1
    assert value(samples, "db_client_operations_total", **labels, outcome="error") == 1
    assert value(samples, "db_client_operation_duration_seconds_count", **labels) == 2


class CodedError(Exception):
    def __init__(self, sqlstate: object) -> None:
        super().__init__("failed")
        self.sqlstate = sqlstate


def test_failed_statements_are_counted_by_sqlstate_with_bounded_labels():
    rec, _, registry = setup(metrics_max_label_values=2)
    for code in ("40P01", "40P01", "23505", "53100", None, "not-a-code", "40p01"):
        ctx = rec.start("UPDATE accounts SET balance = 0", "postgresql", "test")
        rec.fail(ctx, CodedError(code) if code is not None else RuntimeError("no code"))
    run(rec, "UPDATE accounts SET balance = 1")  # a success counts in no error series
    samples = scrape(registry)
    update = {"system": "postgresql", "operation": "update", "table": "accounts"}

    def errors(sqlstate: str, error_class: str) -> float | None:
        return value(samples, "db_client_errors_total", **update, sqlstate=sqlstate,
                     error_class=error_class)  # fmt: skip

    assert errors("40P01", "40") == 2
    assert errors("23505", "23") == 1
    assert errors("other", "53") == 1  # past the guard's 2 codes; the class is still told
    # no code, text that is not one (the label must stay a SQLSTATE), a lower-case one
    assert errors("unknown", "unknown") == 3
    total = sum(v for (name, _), v in samples.items() if name == "db_client_errors_total")
    assert total == value(samples, "db_client_operations_total", **update, outcome="error") == 7


def test_pool_timeouts_are_read_at_scrape_time_where_the_pool_counts_them():
    _, _, registry = setup()
    seen = {"timeouts": 0}
    counted = pools.register(
        "queue-db", lambda: PoolUsage(1, 1, 2, timeouts=seen["timeouts"])
    )
    uncounted = pools.register("null-db", lambda: PoolUsage(0, 0))
    try:
        assert value(scrape(registry), "db_client_pool_timeouts_total", pool=counted) == 0
        seen["timeouts"] = 3
        samples = scrape(registry)
        assert value(samples, "db_client_pool_timeouts_total", pool=counted) == 3
        assert value(samples, "db_client_pool_timeouts_total", pool=uncounted) is None
    finally:
        pools.unregister(counted)
        pools.unregister(uncounted)
