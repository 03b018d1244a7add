"""The recorder's lean path: statements held as tuples, their events built when folded."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import pytest
from lean_observers import Batched, Unbatched, fields_but_timing
from threads_at_once import run_at_once

from dbsight.core import (
    QueryContext,
    QueryEvent,
    QueryObserver,
    Recorder,
    Settings,
    request_scope,
)
from dbsight.core._context import function_scope
from dbsight.core._lean import LeanEvent
from dbsight.core._recorder import BATCH
from dbsight.export.logging import QueryLogSink


class Gated(Unbatched):
    """An unbatched observer whose gate says whether it wants statements now."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__()
        self.open: object = False

    def after_query_wanted(self) -> object:
        return self.open


class State:
    database = "shop"
    user = "app"
    explainer = "the explainer"
    application_name = None  # (an in-process client's: the proxy's sessions set them)
    client_addr = None


SQL = "SELECT name FROM items WHERE id = $1"


def _done(rec: Recorder, sql: str = SQL, params: Any = (7,), explain: bool = True) -> None:
    rec.done(sql, "postgresql", "asyncpg", params, State(), explain, time.perf_counter(), 1)


def _regular(rec: Recorder, sql: str = SQL, params: Any = (7,)) -> Any:
    ctx = rec.start(
        sql, "postgresql", "asyncpg", params,
        database="shop", user="app", explainer="the explainer",
    )  # fmt: skip
    return rec.finish(ctx, 1)


def test_the_lean_path_is_open_only_while_no_observer_needs_statements_at_once() -> None:
    rec = Recorder(Settings())
    assert not rec.lean  # no observer: nothing is recorded at all
    rec.add_observer(Batched())
    assert rec.lean and rec.lean_cutoff == float("inf")
    gated = Gated()
    rec.add_observer(gated)
    assert rec.lean and rec.lean_gate is not None
    unbatched = Unbatched()
    rec.add_observer(unbatched)  # no gate: it must see every statement as it ends
    assert not rec.lean and rec.lean_cutoff < 0.0
    rec.remove_observer(unbatched)
    assert rec.lean

    class Before(QueryObserver):
        def before_query(self, ctx: Any) -> None:
            pass

    before = Before()
    rec.add_observer(before)
    assert not rec.lean
    rec.remove_observer(before)
    rec.apply_settings(Settings(sqlcommenter="full"))
    assert not rec.lean
    rec.apply_settings(Settings(enabled=False))
    assert not rec.lean


def test_a_lean_statement_becomes_the_event_the_regular_path_makes() -> None:
    for keep in (False, True):
        rec = Recorder(Settings(include_query_bodies=keep))
        seen = Batched()
        rec.add_observer(seen)
        scope = request_scope("r1", route="/items", trace_id="t" * 32, span_id="s" * 16)
        with scope, function_scope("load_item"):
            _regular(rec)
            _done(rec)
        _done(rec)
        _regular(rec)
        seen.flush()
        regular, lean, lean_outside, regular_outside = seen.events
        assert fields_but_timing(lean) == fields_but_timing(regular)
        assert fields_but_timing(lean_outside) == fields_but_timing(regular_outside)
        assert lean.request_id == "r1" and lean.route == "/items" and lean.function == "load_item"
        assert lean_outside.request_id is None and lean_outside.function is None
        assert (lean.params == (7,)) is keep
        assert lean.explainer == "the explainer" and lean.explain_params == (7,)
        assert lean.duration_s >= 0.0 and abs(lean.started_at - time.time()) < 60.0


def test_a_statement_not_explained_carries_no_explainer() -> None:
    rec = Recorder(Settings())
    seen = Batched()
    rec.add_observer(seen)
    _done(rec, params=[(1,), (2,)], explain=False)
    rec.done(SQL, "postgresql", "asyncpg", None, None, True, time.perf_counter(), None)
    seen.flush()
    assert [(e.explainer, e.explain_params, e.database) for e in seen.events] == [
        (None, None, "shop"), (None, None, None),
    ]  # fmt: skip


def test_lean_statements_are_held_and_folded_in_order_with_the_others() -> None:
    rec = Recorder(Settings())
    seen = Batched()
    rec.add_observer(seen)
    for i in range(BATCH - 1):
        (_done if i % 2 else _regular)(rec, f"SELECT {i}")
    assert seen.events == []  # held
    rec.failed(
        "SELECT 'failed'", "postgresql", "asyncpg", (), State(), True, time.perf_counter(),
        RuntimeError("server said no"),
    )  # fmt: skip
    # a failed statement comes after the ones held before it
    assert [e.sql for e in seen.events] == [f"SELECT {i}" for i in range(BATCH - 1)] + [
        "SELECT 'failed'"
    ]
    assert seen.events[-1].error is not None and seen.events[-1].error.type == "RuntimeError"
    for i in range(BATCH):
        _done(rec, f"SELECT {i}")
    assert len(seen.events) == 2 * BATCH  # a full batch is folded as it fills


def test_a_slow_lean_statement_comes_at_once_after_the_ones_held() -> None:
    class Slow(Unbatched):
        name = "slow"
        min_duration_s = 0.05

    rec = Recorder(Settings())
    seen, slow = Batched(), Slow()
    rec.add_observer(seen)
    rec.add_observer(slow)
    assert rec.lean and rec.lean_cutoff == 0.05
    _done(rec, "SELECT 1")
    rec.done(SQL, "postgresql", "asyncpg", (7,), State(), True, time.perf_counter() - 0.1, 1)
    assert [e.sql for e in seen.events] == ["SELECT 1", SQL]
    assert [e.sql for e in slow.events] == [SQL] and slow.events[0].duration_s >= 0.1


def test_an_open_gate_gets_the_statement_at_once() -> None:
    rec = Recorder(Settings())
    seen, gated = Batched(), Gated()
    rec.add_observer(seen)
    rec.add_observer(gated)
    _done(rec, "SELECT 1")
    assert gated.events == []
    for answer in (None, True):  # anything but False opens it
        gated.open = answer
        _done(rec, "SELECT 2")
    assert [e.sql for e in gated.events] == ["SELECT 2", "SELECT 2"]
    seen.flush()
    assert [e.sql for e in seen.events] == ["SELECT 1", "SELECT 2", "SELECT 2"]


def test_several_gates_are_closed_only_together() -> None:
    rec = Recorder(Settings())
    first, second = Gated(), Gated()
    rec.add_observer(Batched())
    rec.add_observer(first)
    rec.add_observer(second)
    _done(rec)
    assert first.events == second.events == []
    second.open = True
    _done(rec)
    assert len(first.events) == len(second.events) == 1


def test_a_request_counts_its_lean_statements_at_once() -> None:
    rec = Recorder(Settings())
    rec.add_observer(Batched())
    with request_scope("r1") as request:
        for _ in range(3):
            _done(rec)
        _done(rec, "BEGIN")
    assert request.queries == 4 and request.db_time_s > 0.0
    assert [(t.normalized, t.count) for t in request.fingerprints.values()] == [
        ("SELECT name FROM items WHERE id = $1", 3)
    ]


@pytest.fixture
def query_logger() -> Any:
    logger = logging.getLogger("dbsight.test_lean_query_log")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, records
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_the_query_log_gate_follows_its_logger_level(query_logger: Any) -> None:
    logger, records = query_logger
    rec = Recorder(Settings())
    rec.add_observer(Batched())
    rec.add_observer(QueryLogSink(Settings(), logger=logger))
    logger.setLevel(logging.INFO)
    assert rec.lean
    _done(rec, "SELECT 1")  # the gate does not know yet: the sink is asked, and says no
    _done(rec, "SELECT 2")  # now the gate answers
    assert rec.lean_gate is not None and rec.lean_gate() is False and records == []
    logger.setLevel(logging.DEBUG)  # clears the logger's cache: the sink is asked again
    _done(rec, "SELECT 3")
    assert [r.getMessage().split(" ")[:2] for r in records] == [["query", "select"]]
    logger.setLevel(logging.INFO)
    _done(rec, "SELECT 4")
    assert len(records) == 1


def _sinks(rec: Recorder) -> tuple[Any, Any, Any]:
    from prometheus_client import CollectorRegistry

    from dbsight.export.prometheus import PrometheusSink
    from dbsight.stats import ParameterSamples, StatsSink, StatsTable

    table = StatsTable()
    samples = ParameterSamples(4, seed=1)
    metrics = PrometheusSink(Settings(), CollectorRegistry(), recorder=rec)
    for sink in (StatsSink(table), samples, metrics):
        rec.add_observer(sink)
    return table, samples, metrics


def _counted(table: Any, samples: Any, metrics: Any) -> Any:
    (entry,) = table.top(5)
    series = sorted(
        (s.labels, s.ok, s.sum > 0.0, sum(s.buckets)) for s in metrics._by_labels.values()
    )
    taken = sorted((fp, [s[0] for s in r.samples], r.seen) for fp, r in samples._entries.items())
    return (
        entry.fingerprint, entry.normalized, entry.operation, entry.tables, entry.calls,
        entry.rows, dict(entry.routes), tuple(entry.databases), series, taken,
    )  # fmt: skip


def test_dbsight_sinks_count_lean_events_as_they_count_full_ones() -> None:
    counted = []
    for lean in (True, False):
        rec = Recorder(Settings())
        table, samples, metrics = _sinks(rec)
        assert rec.lean and rec._lean_events
        with request_scope("r1", route="/items"):
            for i in range(BATCH + 5):
                if lean:
                    _done(rec, params=(i,))
                else:
                    _regular(rec, params=(i,))
        _done(rec) if lean else _regular(rec)
        table.sync()
        counted.append(_counted(table, samples, metrics))
    assert counted[0] == counted[1]
    _, normalized, operation, tables, calls, rows, routes, databases = counted[0][:8]
    assert (normalized, operation, tables, calls, rows) == (SQL, "select", ("items",), 70, 70)
    assert routes == {"/items": 69} and databases == ("shop",)


def test_a_user_batched_observer_keeps_full_events_for_every_sink() -> None:
    rec = Recorder(Settings())
    _sinks(rec)
    seen = Batched()  # keeps the events it is handed: no `lean_events`
    rec.add_observer(seen)
    assert not rec._lean_events
    _done(rec)
    seen.flush()
    (event,) = seen.events
    assert type(event).__name__ == "QueryContext" and event.sql == SQL


def test_a_lean_event_gives_every_field_of_the_full_event() -> None:
    from dbsight.core._lean import LeanEvent, lean_contexts, lean_events

    rec = Recorder(Settings(include_query_bodies=True))
    rec.add_observer(Batched())
    with request_scope("r1", route="/items", trace_id="t" * 32, span_id="s" * 16):
        _regular(rec)
    info = rec.analysis(SQL, "postgresql")
    held = (SQL, "postgresql", "asyncpg", None, State(), (7,), True, 0.0, None, "f", 100.0, 0.5, 1)
    light: list[Any] = [held]
    full: list[Any] = [held]
    infos = rec._infos
    lean_events(light, infos, rec.analysis, "svc", True)
    lean_contexts(full, infos, rec.analysis, "svc", True)
    (event,), (ctx,) = light, full
    assert isinstance(event, LeanEvent)
    for f in dataclasses.fields(ctx):
        assert getattr(event, f.name) == getattr(ctx, f.name), f.name
    # the context's own fields too (LeanEvent spells each one out: compiled, it is an
    # extension type, to which none could be added later)
    for name in (*QueryEvent.__slots__, *QueryContext.__slots__):
        assert getattr(event, name) == getattr(ctx, name), name
    assert event.info is info and event.outcome == "ok" and event.table == "items"
    with pytest.raises(AttributeError):
        event.no_such_field  # noqa: B018


class Session(State):
    """A proxy session's facts: who its statements come from."""

    application_name = "billing"
    client_addr = "10.0.0.7"
    explainer = None


def test_a_statement_held_with_its_analysis_keeps_it_and_its_session() -> None:
    from dbsight.core._lean import LeanEvent, lean_contexts, lean_events

    rec = Recorder(Settings())
    sql = "SELECT abalance FROM accounts WHERE aid = 42"
    info = rec.analysis("SELECT abalance FROM accounts WHERE aid = 7", "postgresql")
    held = (sql, "postgresql", "proxy", info, Session(), None, False, 0.0, None, None, 100.0, 0.5,
            1)  # fmt: skip
    light: list[Any] = [held]
    full: list[Any] = [held]

    def never(sql: str, system: str) -> Any:
        raise AssertionError("analyzed again")

    lean_events(light, {}, never, "svc", False)
    lean_contexts(full, {}, never, "svc", False)
    (event,), (ctx,) = light, full
    assert isinstance(event, LeanEvent)
    assert ctx.info is info and ctx.sql == sql and ctx.fingerprint == info.fingerprint
    assert (ctx.database, ctx.user, ctx.application_name, ctx.client_addr) == (
        "shop", "app", "billing", "10.0.0.7",
    )  # fmt: skip
    assert ctx.explainer is None and ctx.params is None and ctx.source == "proxy"
    for f in dataclasses.fields(ctx):
        assert getattr(event, f.name) == getattr(ctx, f.name), f.name


def _begun(rec: Recorder, started: float) -> Any:
    info = rec.analysis(SQL, "postgresql")
    return (SQL, "postgresql", "proxy", info, Session(), None, False, started)


def test_a_begun_statement_ends_as_the_regular_path_would_record_it() -> None:
    rec = Recorder(Settings())
    batched = Batched()
    rec.add_observer(batched)
    before = time.time()
    rec.ended(_begun(rec, time.perf_counter() - 0.25), 3)  # timed from its own start
    assert len(rec._pending) == 1
    (event,) = batched.seen()
    ctx = rec.start(SQL, "postgresql", "proxy", database="shop", user="app")
    ctx.application_name, ctx.client_addr = "billing", "10.0.0.7"
    regular = rec.finish(ctx, 3)
    assert fields_but_timing(batched.seen()[1]) == fields_but_timing(regular)
    assert fields_but_timing(event) == fields_but_timing(regular)
    assert 0.25 <= event.duration_s < 5.0
    assert before - 0.3 < event.started_at < before - 0.2


def test_a_begun_statement_folded_by_dbsights_sinks_starts_when_it_started() -> None:
    rec = Recorder(Settings())
    table, _, _ = _sinks(rec)
    assert rec._lean_events  # (its event is a `LeanEvent`, its start read at the fold)
    before = time.time()
    rec.ended(_begun(rec, time.perf_counter() - 0.25), 3)
    time.sleep(0.05)  # (folded later than it ended: the start is still its own)
    rec.flush()
    table.sync()
    (entry,) = table.top(5)
    assert entry.calls == 1 and before - 0.3 < entry.last_seen < before - 0.2


class Lean(Batched):
    """A batched observer that takes `LeanEvent`s, as dbsight's sinks do, and keeps the
    full event of each (what a sink reads of a statement it meets for the first time)."""

    lean_events = True

    def after_batch(self, batch: list[Any]) -> None:
        self.events.extend(e.full() if isinstance(e, LeanEvent) else e for e in batch)


def test_a_begun_statement_outside_a_request_is_held_as_the_event_its_fold_would_make() -> None:
    rec = Recorder(Settings(service_name="svc"))
    lean, plain = Lean(), Batched()
    rec.add_observer(lean)
    assert rec._lean_events
    before = time.time()
    with function_scope("checkout"):
        rec.ended(_begun(rec, time.perf_counter() - 0.25), 3)
    with request_scope("r1", route="/items"):  # (its route is read at the fold: a tuple)
        rec.ended(_begun(rec, time.perf_counter()), 4)
    held, in_request = rec._pending
    assert type(held) is LeanEvent and type(in_request) is tuple
    info = rec.analysis(SQL, "postgresql")
    assert (held.system, held.fingerprint, held.rows, held.database, held.route) == (
        "postgresql", info.fingerprint, 3, "shop", None,
    )  # fmt: skip
    assert 0.25 <= held.duration_s < 5.0 and before - 0.3 < held.started_at < before - 0.2
    # every field of its full event is the regular path's
    ctx = rec.start(SQL, "postgresql", "proxy", database="shop", user="app")
    ctx.application_name, ctx.client_addr, ctx.function = "billing", "10.0.0.7", "checkout"
    regular = rec.finish(ctx, 3)  # (held too: an event the batch hands on as it is)
    rec.flush()
    event, routed, regular_seen = lean.events
    assert regular_seen is regular
    assert fields_but_timing(event) == fields_but_timing(regular)
    assert event.started_at == held.started_at and event.duration_s == held.duration_s
    assert routed.route == "/items" and routed.rows == 4 and routed.request_id == "r1"
    # an observer that wants full events joins: what was held as events reaches it as such
    rec.ended(_begun(rec, time.perf_counter()), 5)
    (held,) = rec._pending
    assert type(held) is LeanEvent
    rec.lean_ending.set_events(False, ("svc", False))  # (what a rebuild does, after a flush)
    rec.add_observer(plain)
    rec.ended(_begun(rec, time.perf_counter()), 6)
    assert type(rec._pending[-1]) is tuple
    rec.flush()
    assert [e.rows for e in plain.events] == [6] and [e.rows for e in lean.events][3:] == [5, 6]


def test_a_lean_event_held_from_its_start_becomes_its_full_event_for_other_observers() -> None:
    from dbsight.core._lean import lean_contexts

    rec = Recorder(Settings())
    rec.add_observer(Lean())
    rec.ended(_begun(rec, time.perf_counter() - 0.1), 2)
    batch = list(rec._pending)
    assert type(batch[0]) is LeanEvent
    lean_contexts(batch, rec._infos, rec.analysis, None, False)
    (ctx,) = batch
    assert type(ctx) is QueryContext and ctx.rows == 2 and ctx.application_name == "billing"
    assert ctx.duration_s >= 0.1 and ctx.fingerprint == rec.analysis(SQL, "postgresql").fingerprint


def test_a_statement_held_with_its_text_undecoded_has_it_decoded_in_its_events() -> None:
    """The proxy holds a Query known by its shape with the bytes it came as."""
    rec = Recorder(Settings())
    lean, plain = Lean(), Batched()
    rec.add_observer(lean)
    text = "SELECT name FROM items WHERE id = 7 AND name <> 'caf\u00e9'"
    info = rec.analysis(text, "postgresql")

    def begun() -> Any:
        return (text.encode(), "postgresql", "proxy", info, Session(), None, False,
                time.perf_counter())  # fmt: skip

    rec.ended(begun(), 1)
    assert type(rec._pending[0]._held[0]) is bytes  # (held as it came)
    rec.flush()
    rec.add_observer(plain)  # full events for every batched observer from now on
    rec.ended(begun(), 2)
    assert type(rec._pending[0][0]) is bytes
    with request_scope("r1", route="/items"):
        rec.ended(begun(), 3)
    ctx = rec.begun_context(begun())  # (one that failed: its full event at once)
    rec.fail(ctx, RuntimeError("boom"))
    assert [(e.sql, e.rows) for e in lean.events] == [(text, 1), (text, 2), (text, 3), (text, None)]
    assert [e.sql for e in plain.events] == [text] * 3
    assert all(e.fingerprint == info.fingerprint for e in lean.events)


def test_statements_held_from_two_threads_keep_their_own_fingerprints_and_sessions() -> None:
    """The hold remembers the fingerprints of the analyses seen last (each slot an analysis
    and its fingerprint, replaced whole): threads ending statements at once never give one
    the other's fingerprint or database."""
    class Fields(Lean):  # (what the sinks read: the event's own fields)
        def after_batch(self, batch: list[Any]) -> None:
            self.events.extend((e.sql, e.fingerprint, e.database) for e in batch)

    rec = Recorder(Settings())
    seen = Fields()
    rec.add_observer(seen)
    texts = ("SELECT name FROM items WHERE id = 1", "SELECT price FROM prices WHERE id = 2")
    infos = [rec.analysis(text, "postgresql") for text in texts]

    class Shop(Session):
        database = "shop"

    class Books(Session):
        database = "books"

    states = (Shop(), Books())

    def run(k: int) -> None:
        for _ in range(3000):
            rec.ended((texts[k], "postgresql", "proxy", infos[k], states[k], None, False,
                       time.perf_counter()), 1)  # fmt: skip

    run_at_once([lambda: run(0), lambda: run(1)])
    rec.flush()
    assert len(seen.events) == 6000
    assert {k: sum(sql == texts[k] for sql, _, _ in seen.events) for k in (0, 1)} == {
        0: 3000, 1: 3000,
    }  # fmt: skip
    for sql, fingerprint, database in seen.events:
        k = texts.index(sql)
        assert (fingerprint, database) == (infos[k].fingerprint, states[k].database)


def test_statements_of_many_analyses_taking_turns_each_keep_their_own_fingerprint() -> None:
    """A transaction's statements, or clients' taking turns: more analyses than the hold
    remembers, in turn and out of turn, each held with its own analysis's fingerprint."""
    class Fields(Lean):
        def after_batch(self, batch: list[Any]) -> None:
            self.events.extend((e.sql, e.fingerprint) for e in batch)

    rec = Recorder(Settings())
    seen = Fields()
    rec.add_observer(seen)
    texts = [f"SELECT c{k} FROM t{k} WHERE id = 1" for k in range(40)]
    infos = [rec.analysis(text, "postgresql") for text in texts]
    assert len({info.fingerprint for info in infos}) == 40
    order = [k % 7 for k in range(300)] + [(k * 13) % 40 for k in range(600)]
    for k in order:
        rec.ended((texts[k], "postgresql", "proxy", infos[k], Session(), None, False,
                   time.perf_counter()), 1)  # fmt: skip
    rec.flush()
    assert [sql for sql, _ in seen.events] == [texts[k] for k in order]
    assert all(fingerprint == infos[texts.index(sql)].fingerprint
               for sql, fingerprint in seen.events)  # fmt: skip


def test_a_flush_takes_what_is_left_when_another_took_some_since_it_counted() -> None:
    from collections import deque

    from dbsight.core._held import take

    pending: deque[Any] = deque([1, 2, 3])
    assert take(pending, 5) == [1, 2, 3] and not pending  # (counted 5, two taken meanwhile)


def test_a_slow_or_gated_begun_statement_goes_the_regular_way_at_once() -> None:
    rec = Recorder(Settings())
    batched, slow = Batched(), Unbatched()
    slow.min_duration_s = 0.1  # type: ignore[attr-defined]
    gated = Gated()
    for observer in (batched, slow, gated):
        rec.add_observer(observer)
    assert rec.lean and rec.lean_cutoff == 0.1
    rec.ended(_begun(rec, time.perf_counter()), 1)  # held
    rec.ended(_begun(rec, time.perf_counter() - 0.2), 2)  # slow: at once, after the held one
    assert not rec._pending and [e.rows for e in slow.events] == [2]
    assert [e.rows for e in batched.events] == [1, 2] and gated.events[0].rows == 2
    gated.open = True
    rec.ended(_begun(rec, time.perf_counter()), 3)  # the gate is open: at once
    assert [e.rows for e in gated.events] == [2, 3]
    assert all(type(held) is not tuple for held in rec._pending)  # its event, made now
    assert gated.events[1].application_name == "billing"


def test_a_begun_statement_that_fails_gets_its_full_context() -> None:
    rec = Recorder(Settings())
    batched = Batched()
    rec.add_observer(batched)
    ctx = rec.begun_context(_begun(rec, time.perf_counter() - 0.25))
    rec.fail(ctx, RuntimeError("boom"))
    (event,) = batched.seen()
    assert event.error.type == "RuntimeError" and event.duration_s >= 0.25
    assert (event.application_name, event.client_addr, event.source) == (
        "billing", "10.0.0.7", "proxy",
    )  # fmt: skip


def test_each_lean_event_has_its_own_statements_fingerprint_and_database() -> None:
    """Runs of one shape or one session read their fingerprint or database once: in a batch
    that changes both at every step and in runs, each event still has its own."""
    from dbsight.core._lean import lean_events

    rec = Recorder(Settings())
    other_sql = "UPDATE items SET name = $1 WHERE id = $2"
    infos = [rec.analysis(SQL, "postgresql"), rec.analysis(other_sql, "postgresql")]
    shop, billing, nowhere = State(), Session(), None
    billing.database = "billing"  # (an instance's, as a session's facts have)
    plan = [(0, shop), (0, shop), (1, shop), (1, billing), (0, billing), (0, nowhere),
            (1, nowhere), (0, shop), (1, billing), (1, billing)]  # fmt: skip
    batch: list[Any] = [
        (SQL, "postgresql", "proxy", infos[i], state, None, False, 0.0, None, None, 1.0, 0.1, 1)
        for i, state in plan
    ]
    lean_events(batch, rec._infos, rec.analysis, None, False)
    assert [e.fingerprint for e in batch] == [infos[i].fingerprint for i, _ in plan]
    assert [e.database for e in batch] == [
        None if state is None else state.database for _, state in plan
    ]
    assert len({e.fingerprint for e in batch}) == 2
    assert {e.database for e in batch} == {"shop", "billing", None}


def _ended(rec: Recorder, sql: str) -> str:
    """`Recorder.ended` of a proxy's statement: how it was held ("lean": as a tuple, for the
    batch; "event": its event, made at once for the observers that want it now)."""
    info = rec.analysis(sql, "postgresql")
    rec.ended((sql, "postgresql", "proxy", info, Session(), None, False, time.perf_counter()), 1)
    return "lean" if type(rec.pending[-1]) is tuple else "event"


def test_an_ended_statement_follows_the_query_log_gate_read_as_its_lookup(
    query_logger: Any,
) -> None:
    """`Recorder.ended` (the proxy's end of a statement) asks the query log's gate as the
    lookup in its logger's cache it is, with the same answers as calling it."""
    logger, records = query_logger
    rec = Recorder(Settings())
    rec.add_observer(Batched())
    rec.add_observer(QueryLogSink(Settings(), logger=logger))
    ending = rec.lean_ending
    assert ending.gate is rec.lean_gate and ending.gate_map is logger._cache
    logger.setLevel(logging.INFO)
    # the cache does not know yet: the sink is asked (and says no), then the cache answers
    assert [_ended(rec, "SELECT 1"), _ended(rec, "SELECT 2")] == ["event", "lean"]
    logger.setLevel(logging.DEBUG)  # clears the cache: asked again, and logged
    assert _ended(rec, "SELECT 3") == "event"
    assert [r.getMessage().split(" ")[:2] for r in records] == [["query", "select"]]
    logger.setLevel(logging.INFO)
    assert [_ended(rec, "SELECT 4"), _ended(rec, "SELECT 5")] == ["event", "lean"]
    assert len(records) == 1


def test_a_gate_of_another_kind_is_called() -> None:
    rec = Recorder(Settings())
    rec.add_observer(Batched())
    gated = Gated()
    rec.add_observer(gated)
    assert rec.lean_ending.gate_map is None and rec.lean_ending.gate is not None
    assert _ended(rec, SQL) == "lean" and gated.events == []
    gated.open = True
    assert _ended(rec, SQL) == "event" and len(gated.events) == 1
