"""Failing checks as advice events: one per failing object, keyed check:<name>:<object>,
resolved when a later run of the same process finds the object passing."""

from __future__ import annotations

from check_helpers import connect

from dbsight.advise import AdviceEvent
from dbsight.check import run_checks


def test_failing_checks_emit_events_and_passing_again_resolves_them(
    pg_dsn: str, advice_events: list[AdviceEvent]
) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (a int, b int, c int)")
        conn.execute("CREATE INDEX t_a ON t (a)")
        conn.execute("CREATE INDEX t_b ON t (b)")
        conn.execute("CREATE INDEX t_ab ON t (a, b)")
        conn.execute("CREATE INDEX t_bc ON t (b, c)")

    run_checks(pg_dsn, only=["duplicate_indexes", "sequences"])
    assert {(e.kind, e.severity, e.key, e.resolved) for e in advice_events} == {
        ("check", "warning", "check:duplicate_indexes:public.t_a", False),
        ("check", "warning", "check:duplicate_indexes:public.t_b", False),
    }
    first = next(e for e in advice_events if e.key.endswith("t_a"))
    assert first.summary.startswith("Duplicate indexes: public.t_a (2 indexes")
    assert first.details["covered_by"] == "t_ab" and first.details["check"] == "duplicate_indexes"

    advice_events.clear()
    with connect(pg_dsn) as conn:
        conn.execute("DROP INDEX t_a")
    run_checks(pg_dsn, only=["duplicate_indexes"])
    assert sorted((e.key, e.resolved) for e in advice_events) == [
        ("check:duplicate_indexes:public.t_a", True),
        ("check:duplicate_indexes:public.t_b", False),  # still failing: emitted again
    ]

    advice_events.clear()
    run_checks(pg_dsn, only=["duplicate_indexes"])
    assert [(e.key, e.resolved) for e in advice_events] == [("check:duplicate_indexes:public.t_b", False)]


def test_a_check_in_error_resolves_nothing(pg_dsn: str, advice_events: list[AdviceEvent]) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (a int, b int)")
        conn.execute("CREATE INDEX t_a ON t (a)")
        conn.execute("CREATE INDEX t_ab ON t (a, b)")
    run_checks(pg_dsn, only=["duplicate_indexes"])
    assert [e.key for e in advice_events] == ["check:duplicate_indexes:public.t_a"]
    advice_events.clear()
    with connect(pg_dsn) as conn:
        conn.execute("BEGIN")
        conn.execute("DROP INDEX t_ab")  # holds the index's lock: the check times out
        report = run_checks(pg_dsn, only=["duplicate_indexes"], timeout_s=0.3)
        conn.execute("ROLLBACK")
    assert report.result("duplicate_indexes").status == "error"
    assert advice_events == []


def test_events_can_be_left_out(pg_dsn: str, advice_events: list[AdviceEvent]) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (a int)")
        conn.execute("CREATE INDEX t_a1 ON t (a)")
        conn.execute("CREATE INDEX t_a2 ON t (a)")
    report = run_checks(pg_dsn, only=["duplicate_indexes"], emit_events=False)
    assert report.result("duplicate_indexes").failed and advice_events == []
