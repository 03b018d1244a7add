"""Column references by role, and the candidates built from them (no database: the parse
tree and a hand-made catalog)."""

from __future__ import annotations

from dbsight.advise._candidates import Candidate, candidates_for, resolve, shaped_keys
from dbsight.advise._catalog import Catalog, ExistingIndex, Table
from dbsight.advise._references import ColumnRef, parse_references, strip_list_comments


def catalog() -> Catalog:
    c = Catalog()
    orders = Table(1, "orders", 1e5, columns={
        "id": "integer", "customer_id": "integer", "status": "text", "total": "numeric",
        "created_at": "timestamp with time zone", "data": "jsonb",
    }, distinct={"customer_id": 2e4, "status": 3.0})  # fmt: skip
    customers = Table(2, "customers", 2e4, columns={"id": "integer", "email": "text"})
    c.tables = {"orders": orders, "customers": customers}
    c.written = {"orders": "orders", "customers": "customers", "public.orders": "orders"}
    return c


def test_roles_of_each_column() -> None:
    refs = parse_references(
        "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = $1 AND o.created_at > $2 AND o.total IN ($3 /*, ... */) "
        "ORDER BY o.created_at DESC LIMIT $4"
    )
    assert refs is not None
    assert refs.tables == ["orders", "customers"]
    assert refs.join == [ColumnRef("c", "id"), ColumnRef("o", "customer_id")]
    assert ColumnRef("o", "status") in refs.eq and ColumnRef("o", "total") in refs.eq
    assert refs.range == [ColumnRef("o", "created_at")]
    assert refs.order == [(ColumnRef("o", "created_at"), True)]
    assert refs.values[ColumnRef("o", "status")] == ("param", "1")
    assert refs.limits == {4: "10"}
    assert refs.max_param == 4


def test_what_is_not_one_plannable_statement_is_none() -> None:
    assert parse_references("SELECT 1; SELECT 2") is None
    assert parse_references("CREATE INDEX ON t (a)") is None
    assert parse_references("SELEC nothing") is None


def test_the_normalizer_s_list_comment_goes() -> None:
    assert strip_list_comments("a IN ($2 /*, ... */) AND b") == "a IN ($2) AND b"


def test_resolve_puts_unqualified_columns_on_the_table_that_has_them() -> None:
    refs = parse_references(
        "SELECT email FROM public.orders JOIN customers ON customers.id = customer_id "
        "WHERE status = 'x' AND data IS NOT NULL ORDER BY total"
    )
    assert refs is not None
    uses = resolve(refs, catalog())
    assert set(uses) == {"orders", "customers"}
    orders, customers = uses["orders"], uses["customers"]
    assert orders.eq == ["status", "data"] and orders.join == ["customer_id"]
    assert orders.order == [("total", False)]
    assert customers.join == ["id"] and "email" in customers.read
    assert orders.values["status"] == ("const", "x")


def test_shapes_put_equality_then_range_or_order_with_direction() -> None:
    refs = parse_references(
        "SELECT id FROM orders WHERE status = $1 AND customer_id = $2 AND created_at > $3 "
        "ORDER BY total DESC, created_at"
    )
    assert refs is not None
    use = resolve(refs, catalog())["orders"]
    shapes = shaped_keys(use)
    # most selective equality column first
    assert (("customer_id", "status"), (False, False)) in shapes
    assert (("customer_id", "status", "created_at"), (False, False, False)) in shapes
    assert (("customer_id", "status", "total"), (False, False, True)) in shapes
    assert all(len(columns) <= 3 for columns, _ in shapes)


def test_candidates_include_dexter_s_pairs_include_and_partial_and_skip_json() -> None:
    refs = parse_references("SELECT id, total FROM orders WHERE status = $1 AND data = $2 "
                            "ORDER BY created_at DESC")  # fmt: skip
    assert refs is not None
    use = resolve(refs, catalog())["orders"]
    found = candidates_for(use, {"status": "pending"})
    singles = {c.columns for c in found if len(c.columns) == 1 and not c.include and not c.where}
    assert singles >= {("status",), ("created_at",), ("id",), ("total",)}
    assert ("data",) not in singles  # jsonb: no btree
    assert Candidate("orders", ("created_at", "status"), (False, False)) in found  # a pair
    assert Candidate("orders", ("status", "created_at"), (False, True),
                     include=("id", "total")) in found  # fmt: skip
    assert Candidate("orders", ("created_at",), (True,), where=("status", "pending")) in found


def test_an_existing_btree_covers_its_leading_columns() -> None:
    existing = ExistingIndex("ix", "btree", ("customer_id", "created_at"), (False, False),
                             ("total",), True, False, False)  # fmt: skip
    covered = Candidate("orders", ("customer_id",), (False,))
    assert covered.covered_by(existing.columns, existing.descending, existing.include)
    both_desc = Candidate("orders", ("customer_id", "created_at"), (True, True), ("total",))
    assert both_desc.covered_by(existing.columns, existing.descending, existing.include)
    mixed = Candidate("orders", ("customer_id", "created_at"), (False, True))
    assert not mixed.covered_by(existing.columns, existing.descending, existing.include)
    other = Candidate("orders", ("created_at",), (False,))
    assert not other.covered_by(existing.columns, existing.descending, existing.include)


def test_a_partial_predicate_value_is_quoted_and_left_out_of_labels() -> None:
    partial = Candidate("orders", ("created_at",), (False,), where=("status", "it's"))
    assert partial.predicate() == "\"status\" = 'it''s'"
    assert "it's" not in partial.label(values=False) and "it's" not in partial.key
    assert Candidate("orders", ("a",), (False,), where=("b", None)).predicate() == '"b" IS NULL'


def test_a_with_query_name_is_not_a_table_and_is_walked_once() -> None:
    refs = parse_references(
        "WITH recent AS (SELECT id FROM orders WHERE status = $1)"
        " SELECT * FROM recent r JOIN customers c ON c.id = r.id"
    )
    assert refs is not None
    assert sorted(refs.tables) == ["customers", "orders"]
    assert [column.column for column in refs.eq] == ["status"]
