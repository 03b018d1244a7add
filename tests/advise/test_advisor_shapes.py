"""The index advisor against a real PostgreSQL with HypoPG: what it advises for missing
indexes (including both sides of a join), what it leaves alone (an index that already serves
the statement, a table written far more than read), and the shape of what it advises
(equality before range, ORDER BY with its direction, INCLUDE, partial)."""

from __future__ import annotations

import psycopg
import pytest
from advisor_schema import advised, index_defs, params, setup, statement, workload

from dbsight.advise import AdviceEvent, advise_indexes, subscribe, unsubscribe
from dbsight.workload import Sample


@pytest.fixture
def shop(pg_dsn: str) -> str:
    setup(pg_dsn)
    return pg_dsn


def test_missing_indexes_for_a_join_get_an_index_on_each_side(shop: str) -> None:
    join = statement(
        "SELECT li.product, li.qty FROM line_items li JOIN orders o ON o.id = li.order_id "
        "WHERE o.customer_id = 13579",
        calls=400, total_ms=8000,
        samples=params(
            "SELECT li.product, li.qty FROM line_items li JOIN orders o ON o.id = li.order_id "
            "WHERE o.customer_id = $1", *[(str(i),) for i in (3, 77, 1200, 5000, 19013)],
        ),
    )  # fmt: skip
    lookup = statement("SELECT id FROM orders WHERE id = 5", calls=1000, total_ms=50)
    advice = advise_indexes(shop, workload(join, lookup))
    orders = advised(advice, "orders")
    items = advised(advice, "line_items")
    assert [i.index.columns[0] for i in orders] == ["customer_id"]
    assert [i.index.columns[0] for i in items] == ["order_id"]
    for index in (orders[0], items[0]):
        served = {s.fingerprint: s for s in index.statements}
        assert join.fingerprint in served
        assert served[join.fingerprint].cost_after < served[join.fingerprint].cost_before / 10
    assert lookup.fingerprint not in {s.fingerprint for i in advice.indexes for s in i.statements}
    document = advice.to_dict()
    entry = next(i for i in document["indexes"] if i["table"] == "line_items")
    assert entry["create"].startswith("CREATE INDEX CONCURRENTLY ")
    assert "ON line_items" in entry["create"]
    assert set(entry["statements"][0]) >= {
        "fingerprint", "normalized", "calls", "cost_before", "cost_after",
        "measured_before_ms", "measured_after_ms",
    }  # fmt: skip
    assert "13579" not in str(document) and "19013" not in str(document)  # no values


def test_each_statement_alone_would_not_change_the_join_plan(shop: str) -> None:
    """What makes the join case a join case: an index on one side alone leaves the plan's
    cost well above half, only both together bring it down (checked with HypoPG directly)."""
    sql = ("EXPLAIN (FORMAT JSON) SELECT li.product, li.qty FROM line_items li JOIN orders o "
           "ON o.id = li.order_id WHERE o.customer_id = 77")  # fmt: skip
    with psycopg.connect(shop) as conn:
        def cost() -> float:
            return conn.execute(sql).fetchone()[0][0]["Plan"]["Total Cost"]

        base = cost()
        conn.execute("SELECT hypopg_create_index('CREATE INDEX ON orders (customer_id)')")
        one_side = cost()
        conn.execute("SELECT hypopg_create_index('CREATE INDEX ON line_items (order_id)')")
        both = cost()
    assert one_side > base * 0.5
    assert both < base * 0.1


def test_an_index_that_already_serves_the_statement_means_no_advice(shop: str) -> None:
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        conn.execute("ANALYZE orders")
    covered = statement(
        "SELECT * FROM orders WHERE customer_id = 9", calls=900, total_ms=3000,
        samples=params("SELECT * FROM orders WHERE customer_id = $1", ("9",), ("10",), ("4000",)),
    )  # fmt: skip
    advice = advise_indexes(shop, workload(covered))
    assert advice.indexes == []
    assert advice.analyzed == 1


def test_a_table_written_far_more_than_read_gets_no_index_and_the_reason(shop: str) -> None:
    insert = statement(
        "INSERT INTO events (kind, payload, at) VALUES ('a', 'b', now())",
        calls=500_000, total_ms=50_000, rows=500_000,
    )  # fmt: skip
    read = statement("SELECT id, at FROM events WHERE kind = 'k7'", calls=20, total_ms=400)
    advice = advise_indexes(shop, workload(insert, read, window_s=600.0))
    assert advised(advice, "events") == []
    rejected = [r for r in advice.rejected if r.index.table == "events"]
    assert rejected, advice.to_dict()
    reason = rejected[0].reason
    assert "events is written 25,000 times for each read" in reason
    assert "writes/min" in reason
    assert rejected[0].write_overhead is not None
    assert rejected[0].write_overhead["writes_per_minute"] == pytest.approx(50_000)
    assert read.fingerprint in rejected[0].fingerprints
    # The same read without the writes is worth an index.
    alone = advise_indexes(shop, workload(read, window_s=600.0))
    assert [i.index.columns[0] for i in advised(alone, "events")] == ["kind"]


def test_equality_columns_come_before_the_range_column(shop: str) -> None:
    sql = "SELECT id FROM customers WHERE created_at > $1 AND country = $2"
    samples = params(sql, *[(f"now() - interval '{m} minutes'", c)
                            for m, c in ((3000, "fr"), (4500, "de"), (6000, "us"), (2000, "jp"))])  # fmt: skip
    # The parameters are text: the planner sees the timestamps as values of the column's type.
    samples = [Sample(s.sql, (_timestamp(shop, s.params[0]), s.params[1])) for s in samples]
    advice = advise_indexes(shop, workload(statement(sql.replace("$1", "now()").replace("$2", "'fr'"),
                                                     calls=300, total_ms=6000, samples=samples)))
    [index] = advised(advice, "customers")
    assert index.index.columns == ("country", "created_at")


def test_order_by_columns_follow_with_their_direction(shop: str) -> None:
    sql = "SELECT id FROM orders WHERE status = $1 ORDER BY total DESC, created_at LIMIT 10"
    samples = params(sql, ("shipped",), ("cancelled",), ("shipped",), ("cancelled",), ("pending",))
    text = sql.replace("$1", "'shipped'")
    advice = advise_indexes(shop, workload(statement(text, calls=300, total_ms=6000, samples=samples)))
    [index] = advised(advice, "orders")
    assert index.index.columns == ("status", "total", "created_at")
    assert index.to_dict()["directions"] == ["asc", "desc", "asc"]
    assert '"total" DESC' in index.create


def test_include_columns_make_an_index_only_scan(shop: str) -> None:
    # total is spread over the heap: reading rows by it costs a visit per row, which an
    # index holding customer_id too saves.
    sql = "SELECT customer_id, total FROM orders WHERE total BETWEEN $1 AND $2"
    samples = params(sql, ("10", "12"), ("30", "32.5"), ("50", "51.5"), ("70", "72"))
    advice = advise_indexes(shop, workload(statement(
        "SELECT customer_id, total FROM orders WHERE total BETWEEN 1 AND 2",
        calls=200, total_ms=9000, samples=samples)))  # fmt: skip
    [index] = advised(advice, "orders")
    assert index.index.columns == ("total",)
    assert index.index.include == ("customer_id",)
    assert "index-only scan" in index.reason
    assert 'INCLUDE ("customer_id")' in index.create


def test_a_value_that_dominates_the_traffic_gets_a_partial_index(shop: str) -> None:
    sql = "SELECT id, total FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT $2"
    samples = params(sql, *[("pending", str(n)) for n in (10, 20, 5, 50, 10, 10, 25)])
    advice = advise_indexes(shop, workload(statement(
        "SELECT id, total FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 10",
        calls=500, total_ms=9000, samples=samples)))  # fmt: skip
    [index] = advised(advice, "orders")
    assert index.index.where == ("status", "pending")
    assert index.to_dict()["where"] == "\"status\" = 'pending'"
    assert index.index.columns == ("created_at",)
    assert "partial" in index.reason


def test_no_dominant_value_no_partial_index(shop: str) -> None:
    sql = "SELECT id, total FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT 10"
    samples = params(sql, *[(s,) for s in ("pending", "shipped", "cancelled") * 3])
    advice = advise_indexes(shop, workload(statement(
        sql.replace("$1", "'x'"), calls=500, total_ms=9000, samples=samples)))  # fmt: skip
    assert all(i.index.where is None for i in advice.indexes)


def test_one_index_serves_several_statements_and_makes_others_pointless(shop: str) -> None:
    by_customer = statement(
        "SELECT * FROM orders WHERE customer_id = 5", calls=600, total_ms=6000,
        samples=params("SELECT * FROM orders WHERE customer_id = $1", ("5",), ("900",), ("77",)),
    )  # fmt: skip
    by_customer_and_status = statement(
        "SELECT id FROM orders WHERE customer_id = 5 AND status = 'x'", calls=300, total_ms=3000,
        samples=params("SELECT id FROM orders WHERE customer_id = $1 AND status = $2",
                       ("5", "shipped"), ("900", "pending"), ("77", "cancelled")),
    )  # fmt: skip
    advice = advise_indexes(shop, workload(by_customer, by_customer_and_status))
    [index] = advised(advice, "orders")
    assert index.index.columns[0] == "customer_id"
    assert {s.fingerprint for s in index.statements} == {
        by_customer.fingerprint, by_customer_and_status.fingerprint,
    }  # fmt: skip


def test_each_advised_index_is_an_advice_event(shop: str) -> None:
    events: list[AdviceEvent] = []
    subscribe(events.append)
    try:
        advice = advise_indexes(shop, workload(statement(
            "SELECT * FROM orders WHERE customer_id = 5", calls=600, total_ms=6000)))  # fmt: skip
    finally:
        unsubscribe(events.append)
    [index] = advice.indexes
    [event] = [e for e in events if e.kind == "index"]
    assert event.key == f"index:orders:{','.join(index.index.columns)}"
    assert event.severity == "warning"
    assert "orders" in event.summary and "5" not in str(event.details["columns"])


def test_nothing_is_left_in_the_database(shop: str) -> None:
    before = index_defs(shop, "orders")
    advise_indexes(shop, workload(statement(
        "SELECT * FROM orders WHERE customer_id = 5", calls=600, total_ms=6000)))  # fmt: skip
    assert index_defs(shop, "orders") == before
    with psycopg.connect(shop) as conn:
        assert conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()[0] == 0


def _timestamp(dsn: str, expression: str) -> str:
    with psycopg.connect(dsn) as conn:
        return str(conn.execute(f"SELECT ({expression})::timestamptz::text").fetchone()[0])


def test_write_cost_outweighs_a_small_read_saving(shop: str) -> None:
    """Written 500 times for each read: under the 1,000 rule, but the upkeep of the index on
    every write (sized by hypopg_relation_size) costs more than the reads would save."""
    insert = statement(
        "INSERT INTO events (kind, payload, at) VALUES ('a', 'b', now())",
        calls=50_000, total_ms=5_000, rows=50_000,
    )  # fmt: skip
    read = statement("SELECT id, at FROM events WHERE kind = 'k7'", calls=100, total_ms=10)
    advice = advise_indexes(shop, workload(insert, read, window_s=600.0))
    assert advised(advice, "events") == []
    [rejected] = [r for r in advice.rejected if r.index.table == "events"]
    assert rejected.reason.startswith("its write cost (~"), rejected.reason
    assert "ms/min of index upkeep) outweighs the read time" in rejected.reason
    overhead = rejected.write_overhead
    assert overhead is not None and overhead["index_size_bytes"] > 100_000
    assert overhead["writes_per_read"] == pytest.approx(500)
    assert overhead["estimated_write_ms_per_minute"] > overhead["estimated_read_ms_saved_per_minute"]
