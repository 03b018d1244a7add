"""``verify=True``: the advised index is built for real, the statements it serves are run with
their real parameters before and after, and the index is dropped again unless ``keep``."""

from __future__ import annotations

import psycopg
import pytest
from advisor_schema import index_defs, params, setup, statement, workload

from dbsight.advise import AdvisedIndex, advise_indexes

SQL = "SELECT id, total FROM orders WHERE customer_id = $1"


@pytest.fixture
def shop(pg_dsn: str) -> str:
    setup(pg_dsn)
    return pg_dsn


def _workload():  # type: ignore[no-untyped-def]
    return workload(
        statement(SQL.replace("$1", "7"), calls=800, total_ms=8000,
                  samples=params(SQL, ("7",), ("901",), ("15000",))),  # fmt: skip
        # A write the index serves too: measured never (the verifier runs reads only).
        statement("UPDATE orders SET note = 'x' WHERE customer_id = 3", calls=5, total_ms=100),
    )


def test_verify_measures_a_real_speed_up_and_drops_the_index(shop: str) -> None:
    before = index_defs(shop, "orders")
    announced: list[tuple[list[str], str]] = []

    def before_verify(indexes: list[AdvisedIndex], where: str) -> None:
        announced.append(([i.create for i in indexes], where))
        assert index_defs(shop, "orders") == before  # told before anything is built

    advice = advise_indexes(shop, _workload(), verify=True, before_verify=before_verify)
    [index] = advice.indexes
    assert announced and announced[0][0] == [index.create]
    assert announced[0][1].endswith("/" + psycopg.conninfo.conninfo_to_dict(shop)["dbname"])
    assert index.verified and not index.kept and index.verify_error is None
    read = next(s for s in index.statements if s.normalized.startswith("SELECT"))
    assert read.measured_before_ms is not None and read.measured_after_ms is not None
    assert read.measured_after_ms * 3 < read.measured_before_ms, read
    assert index.to_dict()["statements"][0]["measured_before_ms"] == pytest.approx(
        read.measured_before_ms, abs=1e-3
    )
    for other in index.statements:
        if other is not read:
            assert other.measured_before_ms is None and other.measure_note == "a write: not run"
    assert index_defs(shop, "orders") == before  # dropped again
    with psycopg.connect(shop) as conn:  # the UPDATE never ran
        assert conn.execute("SELECT count(*) FROM orders WHERE note = 'x'").fetchone()[0] == 0


def test_keep_leaves_the_index_in_place(shop: str) -> None:
    advice = advise_indexes(shop, _workload(), verify=True, keep=True)
    [index] = advice.indexes
    assert index.kept and index.created_name
    defs = index_defs(shop, "orders")
    assert any("(customer_id" in d for d in defs), defs
    with psycopg.connect(shop) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
            (index.created_name,),
        ).fetchone()[0]
    assert valid
    # Advised again, the kept index covers the statement: nothing more to advise.
    assert advise_indexes(shop, _workload()).indexes == []


def test_without_verify_nothing_is_built(shop: str) -> None:
    before = index_defs(shop, "orders")
    advice = advise_indexes(shop, _workload())
    assert advice.indexes and not advice.indexes[0].verified
    assert advice.indexes[0].statements[0].measured_before_ms is None
    assert index_defs(shop, "orders") == before


def test_without_samples_verify_runs_values_the_columns_hold(shop: str) -> None:
    """A workload from pg_stat_statements or a summary has no parameter values: the
    statements are run with values from the column statistics, and the note says so."""
    normalized_only = workload(statement(
        "SELECT id, total FROM orders WHERE customer_id IN (1, 2, 3) LIMIT 50",
        calls=800, total_ms=8000,
    ))  # fmt: skip
    [only] = normalized_only
    assert only.normalized == "SELECT id, total FROM orders WHERE customer_id IN ($1 /*, ... */) LIMIT $2"
    advice = advise_indexes(shop, normalized_only, verify=True)
    [index] = advice.indexes
    [served] = index.statements
    assert served.generic_plan
    assert served.measured_before_ms is not None and served.measured_after_ms is not None
    assert served.measured_after_ms * 3 < served.measured_before_ms
    assert served.measure_note is not None and "column statistics" in served.measure_note


def test_a_parameter_with_no_known_values_is_not_run(shop: str) -> None:
    advice = advise_indexes(shop, workload(statement(
        "SELECT id FROM orders WHERE customer_id + 0 = 5 AND customer_id = 7",
        calls=800, total_ms=8000,
    )), verify=True)  # fmt: skip
    [index] = advice.indexes
    [served] = index.statements
    assert served.measured_before_ms is None
    assert served.measure_note == "no parameter samples: not run"
