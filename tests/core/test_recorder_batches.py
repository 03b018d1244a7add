"""Batched observers: every statement reaches them, in order, and their readers see it all."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry

from dbsight.core import QueryObserver, Recorder, Settings
from dbsight.core._recorder import BATCH
from dbsight.export.prometheus import PrometheusSink
from dbsight.stats import StatsSink, StatsTable


class Sequence(QueryObserver):
    """A batched observer that notes what it sees, in the order it sees it."""

    name = "sequence"
    batched = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.flush: Any = None

    def bind_flush(self, flush: Any) -> None:
        self.flush = flush

    def after_query(self, ctx: Any, event: Any) -> None:
        self.seen.append(("ok", event.sql))

    def on_error(self, ctx: Any, event: Any) -> None:
        self.seen.append(("error", event.sql))


class Broken(QueryObserver):
    name = "broken"
    batched = True

    def after_query(self, ctx: Any, event: Any) -> None:
        raise RuntimeError("observer bug")


def _run(rec: Recorder, sql: str, error: bool = False) -> None:
    ctx = rec.start(sql, "postgresql", "test")
    if error:
        rec.fail(ctx, RuntimeError("server said no"))
    else:
        rec.finish(ctx, 1)


def test_a_failed_statement_comes_after_the_successful_ones_held_before_it() -> None:
    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(seen)
    _run(rec, "SELECT 1")
    _run(rec, "SELECT 2")
    _run(rec, "SELECT 3", error=True)
    _run(rec, "SELECT 4")
    assert seen.seen[:3] == [("ok", "SELECT 1"), ("ok", "SELECT 2"), ("error", "SELECT 3")]
    seen.flush()
    assert seen.seen == [
        ("ok", "SELECT 1"), ("ok", "SELECT 2"), ("error", "SELECT 3"), ("ok", "SELECT 4"),
    ]  # fmt: skip


def test_every_statement_of_many_batches_arrives_once_in_order() -> None:
    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(seen)
    count = BATCH * 3 + 5
    for i in range(count):
        _run(rec, f"SELECT {i}")
    assert len(seen.seen) == BATCH * 3  # full batches are folded as they fill
    rec.flush()
    assert seen.seen == [("ok", f"SELECT {i}") for i in range(count)]


def test_a_removed_observer_still_sees_what_it_was_owed() -> None:
    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(seen)
    _run(rec, "SELECT 1")
    rec.remove_observer(seen)
    _run(rec, "SELECT 2")
    rec.flush()
    assert seen.seen == [("ok", "SELECT 1")]


def test_a_failing_batched_observer_is_counted_and_breaks_nothing() -> None:
    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(Broken())
    rec.add_observer(seen)
    for i in range(3):
        _run(rec, f"SELECT {i}")
    rec.flush()
    assert rec.failures.counts["broken"] == 3
    assert [sql for _, sql in seen.seen] == ["SELECT 0", "SELECT 1", "SELECT 2"]


class Batches(Sequence):
    """A batched observer that takes each batch in one call."""

    name = "batches"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def after_batch(self, events: Any) -> None:
        self.calls.append(len(events))
        self.seen.extend(("ok", event.sql) for event in events)


class BrokenBatches(QueryObserver):
    name = "broken-batches"
    batched = True

    def after_query(self, ctx: Any, event: Any) -> None:  # (slow statements only)
        pass

    def after_batch(self, events: Any) -> None:
        raise RuntimeError("observer bug")


def test_an_after_batch_hook_gets_each_batch_in_one_call_in_order() -> None:
    rec = Recorder(Settings())
    seen = Batches()
    rec.add_observer(seen)
    count = BATCH * 2 + 3
    for i in range(count):
        _run(rec, f"SELECT {i}")
    _run(rec, "SELECT failed", error=True)  # (the three held go first, in one call)
    assert seen.calls == [BATCH, BATCH, 3]
    assert seen.seen == [("ok", f"SELECT {i}") for i in range(count)] + [("error", "SELECT failed")]


def test_a_failing_after_batch_hook_is_counted_and_breaks_nothing() -> None:
    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(BrokenBatches())
    rec.add_observer(seen)
    for i in range(3):
        _run(rec, f"SELECT {i}")
    rec.flush()
    assert rec.failures.counts["broken-batches"] == 1  # one batch, one failure
    assert [sql for _, sql in seen.seen] == ["SELECT 0", "SELECT 1", "SELECT 2"]


def test_statistics_read_right_after_a_statement_count_it() -> None:
    rec = Recorder(Settings())
    table = StatsTable()
    rec.add_observer(StatsSink(table))
    _run(rec, "SELECT * FROM users WHERE id = 1")
    _run(rec, "SELECT * FROM users WHERE id = 2")
    (top,) = table.top()
    assert top.calls == 2
    assert table.totals().calls == 2
    assert len(table) == 1


def test_a_scrape_right_after_a_statement_counts_it() -> None:
    rec = Recorder(Settings())
    registry = CollectorRegistry()
    sink = PrometheusSink(Settings(), registry, recorder=rec)
    rec.add_observer(sink)
    try:
        _run(rec, "SELECT * FROM users WHERE id = 1")
        labels = {"system": "postgresql", "operation": "select", "table": "users", "outcome": "ok"}
        assert registry.get_sample_value("db_client_operations_total", labels) == 1.0
    finally:
        sink.close()


def test_a_slow_statement_comes_after_the_ones_held() -> None:
    class Slow(QueryObserver):
        name = "slow"
        min_duration_s = 0.05

        def __init__(self, seen: Sequence) -> None:
            self.sequence = seen

        def after_query(self, ctx: Any, event: Any) -> None:
            self.sequence.seen.append(("slow", event.sql))

    rec = Recorder(Settings())
    seen = Sequence()
    rec.add_observer(seen)
    rec.add_observer(Slow(seen))
    _run(rec, "SELECT 1")
    ctx = rec.start("SELECT 2", "postgresql", "test")
    time.sleep(0.06)
    rec.finish(ctx, 1)
    assert seen.seen == [("ok", "SELECT 1"), ("ok", "SELECT 2"), ("slow", "SELECT 2")]


def test_a_forked_child_inherits_no_statements_held_by_its_parent() -> None:
    import os

    import dbsight
    from dbsight._runtime import recorder

    runtime = dbsight.configure(dbsight.Settings())
    try:
        ctx = recorder.start("SELECT * FROM fork_check WHERE id = 1", "postgresql", "test")
        recorder.finish(ctx, 1)
        pid = os.fork()
        if pid == 0:  # the child: nothing left to fold twice
            os._exit(0 if not recorder._pending else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        counted = runtime.stats.get(ctx.fingerprint)
        assert counted is not None and counted.calls == 1
    finally:
        dbsight.configure(dbsight.Settings())
