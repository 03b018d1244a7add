"""The relay's statements on the recorder's lean path, from the messages alone: which ones
are opened as `LeanStart` tuples, and that every way a statement ends (answered, failed,
asked again elsewhere, abandoned) gives the events the regular path gives (the real-server
tests are in tests/proxy_server/test_proxy_lean.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lean_observers import Batched, Unbatched, fields_but_timing
from test_exchange_rows import DIVISION_BY_ZERO, FAILED, IDLE, ROW, Wire

import dbsight
from dbsight import _runtime
from dbsight.proxy._pipeline import Observation
from dbsight.proxy.protocol import (
    Bind,
    BindComplete,
    CommandComplete,
    Execute,
    ParameterStatus,
    Parse,
    ParseComplete,
    Query,
    Sync,
)

SELECT = "SELECT n FROM t WHERE id = 7"


@pytest.fixture
def batched(fresh_runtime: Any) -> Iterator[Batched]:
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    observer = Batched()
    dbsight.add_observer(observer)
    yield observer
    dbsight.remove_observer(observer)


def _wire() -> Wire:
    wire = Wire()
    wire.exchange = type(wire.exchange)(
        user="u", database="d", application_name="app-1", client_addr="10.1.2.3"
    )
    return wire


def _opened(wire: Wire) -> list[Any]:
    return [payload for _, payload in wire.exchange.pending if payload is not None]


def _both_ways(batched: Batched, run: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """``run(wire)`` on the lean path, then the regular way (an unbatched observer closes
    the lean path): the events of each, and what the lean run opened."""
    assert _runtime.recorder.lean
    opened = run(_wire())
    lean = list(batched.seen())
    batched.events.clear()
    unbatched = Unbatched()
    dbsight.add_observer(unbatched)
    try:
        run(_wire())
        regular = list(batched.seen())
    finally:
        dbsight.remove_observer(unbatched)
    assert len(lean) == len(regular) > 0
    assert [fields_but_timing(e) for e in lean] == [fields_but_timing(e) for e in regular]
    return lean, regular, opened


def test_a_query_and_an_execute_are_opened_as_tuples_and_end_as_events(
    batched: Batched,
) -> None:
    def run(wire: Wire) -> list[Any]:
        wire.client(Query(SELECT))
        wire.client(Parse("", SELECT), Bind("", ""), Execute("", 0), Sync())
        opened = _opened(wire)
        wire.server(ROW, CommandComplete("SELECT 1"), IDLE)
        wire.server(ParseComplete(), BindComplete(), ROW, ROW, CommandComplete("SELECT 2"), IDLE)
        return opened

    lean, _, opened = _both_ways(batched, run)
    assert [type(o) for o in opened] == [tuple, tuple]
    assert [(e.sql, e.rows, e.application_name, e.client_addr) for e in lean] == [
        (SELECT, 1, "app-1", "10.1.2.3"), (SELECT, 2, "app-1", "10.1.2.3"),
    ]  # fmt: skip


def test_an_execute_with_a_row_limit_keeps_its_full_context(batched: Batched) -> None:
    def run(wire: Wire) -> list[Any]:
        wire.client(Parse("", SELECT), Bind("", ""), Execute("", 1), Sync())
        opened = _opened(wire)
        wire.server(ParseComplete(), BindComplete(), ROW, CommandComplete("SELECT 1"), IDLE)
        return opened

    lean, _, opened = _both_ways(batched, run)
    assert type(opened[0]).__name__ == "QueryContext" and lean[0].rows == 1


def test_failed_statements_and_skipped_ones(batched: Batched) -> None:
    def run(wire: Wire) -> list[Any]:
        wire.client(Query("SELECT 1/0"))
        wire.server(DIVISION_BY_ZERO, IDLE)
        wire.client(Parse("", "SELECT 1/0"), Bind("", ""), Execute("", 0))
        wire.client(Parse("", SELECT), Bind("", ""), Execute("", 0), Sync())
        opened = _opened(wire)
        wire.server(ParseComplete(), BindComplete(), DIVISION_BY_ZERO, FAILED)
        return opened

    lean, _, opened = _both_ways(batched, run)
    assert [type(o) for o in opened] == [tuple, tuple]
    assert [(e.sql, e.error.sqlstate) for e in lean] == [
        ("SELECT 1/0", "22012"), ("SELECT 1/0", "22012"), (SELECT, "25P02"),
    ]  # fmt: skip


def test_statements_asked_again_elsewhere_or_abandoned_count_as_failed(
    batched: Batched,
) -> None:
    def run(wire: Wire) -> list[Any]:
        wire.client(Query(SELECT))
        wire.exchange.restart("the server went away")
        wire.client(Query(SELECT), Parse("", SELECT), Bind("", ""), Execute("", 0), Sync())
        opened = _opened(wire)
        wire.exchange.abandon()
        return opened

    lean, _, opened = _both_ways(batched, run)
    assert [type(o) for o in opened] == [tuple, tuple]
    assert [e.error.sqlstate for e in lean] == ["08006", "57014", "57014"]
    assert all(e.duration_s >= 0.0 and e.application_name == "app-1" for e in lean)


def test_a_statement_keeps_the_application_name_it_ran_with(batched: Batched) -> None:
    def run(wire: Wire) -> list[Any]:
        wire.client(Query("SET application_name = 'app-2'"))
        wire.server(CommandComplete("SET"), ParameterStatus("application_name", "app-2"), IDLE)
        wire.client(Query(SELECT))
        wire.server(ROW, CommandComplete("SELECT 1"), IDLE)
        return []

    lean, _, _ = _both_ways(batched, run)
    assert [e.application_name for e in lean] == ["app-1", "app-2"]


def test_a_statement_the_pipeline_samples_takes_the_regular_path(batched: Batched) -> None:
    wire = _wire()
    wire.exchange.observation = Observation(sampled=True)
    wire.client(Query(SELECT))
    wire.client(Query(SELECT))
    first, second = _opened(wire)
    assert type(first).__name__ == "QueryContext" and first.sampled is True
    assert type(second) is tuple  # the decision was for the first one only
    wire.server(ROW, CommandComplete("SELECT 1"), IDLE, ROW, CommandComplete("SELECT 1"), IDLE)
    assert [e.sampled for e in batched.seen()] == [True, None]


def test_a_commented_statement_takes_the_regular_path(batched: Batched) -> None:
    wire = _wire()
    wire.client(Query(SELECT + " /*traceparent='00-" + "a" * 32 + "-" + "b" * 16 + "-01'*/"))
    (opened,) = _opened(wire)
    assert type(opened).__name__ == "QueryContext"
    wire.server(ROW, CommandComplete("SELECT 1"), IDLE)
    (event,) = batched.seen()
    assert event.sql == SELECT and event.trace_id == "a" * 32


def test_a_commented_prepared_statement_takes_the_regular_path_each_time(
    batched: Batched,
) -> None:
    """An Execute's text is looked at for a /* comment once it is known to have none; one
    that has one is never kept as known, so each run of it reads its comment again."""
    traced = SELECT + " /*traceparent='00-" + "a" * 32 + "-" + "b" * 16 + "-01'*/"
    wire = _wire()
    wire.client(Parse("c", traced), Parse("plain", SELECT), Sync())
    for _ in range(2):
        wire.client(Bind("", "c"), Execute("", 0), Sync(), Bind("", "plain"), Execute("", 0))
        wire.client(Sync())
    kinds = [type(o).__name__ for o in _opened(wire)]
    assert kinds == ["QueryContext", "tuple", "QueryContext", "tuple"]
    assert "/*" not in str(wire.exchange._analyses)


@pytest.mark.parametrize(
    ("limit", "limited"), [(0, False), (1, True), (256, True), (1 << 24, True), (-1, False)]
)
def test_named_statements_and_portals_and_the_row_limit_as_the_execute_says(
    batched: Batched, limit: int, limited: bool
) -> None:
    """A Bind's statement and portal names, and an Execute's row limit (an int32: only one
    above zero may suspend the portal), are read as the messages say."""
    other = "SELECT n FROM u WHERE id = $1"
    wire = _wire()
    wire.client(Parse("stmt_é1", SELECT), Parse("s2", other), Sync())
    wire.client(Bind("portal_1", "stmt_é1"), Execute("portal_1", limit), Sync())
    wire.client(Bind("", "s2", values=(b"7",)), Execute("", 0), Sync())
    opened = _opened(wire)
    assert wire.exchange.portals == {"portal_1": SELECT, "": other}
    kinds = [type(o) is tuple for o in opened]
    assert kinds == [not limited, True]  # (with a row limit: its full context)
    texts = [o[0] if type(o) is tuple else o.sql for o in opened]
    assert texts == [SELECT, other]
    # the same text again: its analysis is the one kept for it (no lookup of its own)
    wire.client(Bind("", "s2", values=(b"8",)), Execute("", 0), Sync())
    again = _opened(wire)[-1]
    assert again[3] is opened[1][3]
