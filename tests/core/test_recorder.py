import asyncio
import logging

import pytest

from dbsight.core import QueryEvent, QueryObserver, Recorder, Settings, request_scope


class Collect(QueryObserver):
    def __init__(self):
        self.before, self.ok, self.failed = [], [], []

    def before_query(self, ctx):
        self.before.append(ctx.sql)

    def after_query(self, ctx, event):
        self.ok.append(event)

    def on_error(self, ctx, event):
        self.failed.append(event)


class Boom(QueryObserver):
    name = "boom"

    def after_query(self, ctx, event):
        raise RuntimeError("observer bug")


def test_event_carries_analysis_and_request_context():
    rec = Recorder(Settings(service_name="shop"))
    seen = Collect()
    rec.add_observer(seen)
    with request_scope("req-1", route="/orders/{id}") as req:
        ctx = rec.start("SELECT * FROM orders WHERE id = 42", "postgresql", "test")
        rec.finish(ctx, rows=1)
    (event,) = seen.ok
    assert event.operation == "select"
    assert event.tables == ("orders",)
    assert "42" not in event.normalized
    assert event.request_id == "req-1" and event.route == "/orders/{id}"
    assert event.app == "shop"
    assert event.rows == 1 and event.duration_s >= 0
    assert event.params is None
    assert req.queries == 1 and req.db_time_s >= event.duration_s


def test_failing_observer_is_isolated_counted_and_logged_once(caplog):
    rec = Recorder(Settings())
    seen = Collect()
    rec.add_observer(Boom())
    rec.add_observer(seen)
    with caplog.at_level(logging.ERROR, logger="dbsight"):
        for _ in range(3):
            rec.finish(rec.start("SELECT 1", "postgresql", "test"))
    assert len(seen.ok) == 3
    assert rec.failures.counts == {"boom": 3}
    assert len([r for r in caplog.records if "boom" in r.getMessage()]) == 1


def test_errors_go_to_on_error_with_sqlstate():
    class PgError(Exception):
        sqlstate = "42P01"

    rec = Recorder(Settings())
    seen = Collect()
    rec.add_observer(seen)
    ctx = rec.start("SELECT * FROM missing", "postgresql", "test")
    rec.fail(ctx, PgError("relation does not exist"))
    (event,) = seen.failed
    assert event.error.sqlstate == "42P01" and event.error.type == "PgError"
    assert event.outcome == "error"


def test_cancellation_is_recorded_as_error():
    rec = Recorder(Settings())
    seen = Collect()
    rec.add_observer(seen)
    rec.fail(rec.start("SELECT pg_sleep(1)", "postgresql", "test"), asyncio.CancelledError())
    assert seen.failed[0].error.type == "CancelledError"


def test_disabled_recorder_is_inactive_and_observers_can_be_removed():
    seen = Collect()
    rec = Recorder(Settings(enabled=False))
    rec.add_observer(seen)
    assert rec.active is False
    rec.apply_settings(Settings())
    assert rec.active is True
    rec.remove_observer(seen)
    assert rec.active is False


def test_params_kept_only_with_query_bodies():
    seen = Collect()
    rec = Recorder(Settings())
    rec.add_observer(seen)
    rec.finish(rec.start("SELECT $1", "postgresql", "test", ("secret",)))
    rec.apply_settings(Settings(include_query_bodies=True))
    rec.finish(rec.start("SELECT $1", "postgresql", "test", ("secret",)))
    assert [e.params for e in seen.ok] == [None, ("secret",)]


def test_observer_without_hooks_is_refused():
    with pytest.raises(TypeError):
        Recorder().add_observer(object())


def test_duck_typed_observer_is_accepted():
    class Plain:
        def __init__(self):
            self.events = []

        def after_query(self, ctx, event):
            self.events.append(event)

    rec = Recorder()
    plain = Plain()
    rec.add_observer(plain)
    rec.finish(rec.start("SELECT 1", "sqlite", "test"))
    assert len(plain.events) == 1


def test_observers_with_a_minimum_duration_see_only_slower_statements() -> None:
    class Slow(QueryObserver):
        min_duration_s = 0.05

        def __init__(self) -> None:
            self.seen: list[str] = []

        def after_query(self, ctx: object, event: QueryEvent) -> None:
            self.seen.append(event.sql)

        def on_error(self, ctx: object, event: QueryEvent) -> None:
            self.seen.append("error: " + event.sql)

    rec = Recorder(Settings())
    slow = Slow()
    rec.add_observer(slow)
    rec.finish(rec.start("SELECT 1", "postgresql", "test"))
    late = rec.start("SELECT 2", "postgresql", "test")
    late.started -= 0.1
    rec.finish(late)
    failed = rec.start("SELECT 3", "postgresql", "test")
    failed.started -= 0.1
    rec.fail(failed, RuntimeError("boom"))
    rec.fail(rec.start("SELECT 4", "postgresql", "test"), RuntimeError("quick"))
    assert slow.seen == ["SELECT 2", "error: SELECT 3"]
