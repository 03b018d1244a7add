"""Sequences past 90 % of what their column (or they themselves) can hold: serial, identity
and a DEFAULT nextval() column, judged by the column's type; the statements the hint prints
fix it when a person runs them."""

from __future__ import annotations

from check_helpers import check, connect, objects

INT4_MAX = 2_147_483_647


def test_sequences_at_95_percent_of_an_integer_column_fail_and_the_hint_fixes_them(
    pg_dsn: str,
) -> None:
    at_95 = int(INT4_MAX * 0.95)
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY)")
        conn.execute("CREATE TABLE invoices (id int GENERATED ALWAYS AS IDENTITY)")
        conn.execute("CREATE SEQUENCE ticket_numbers AS bigint")  # wide sequence, narrow column
        conn.execute("CREATE TABLE tickets (number int DEFAULT nextval('ticket_numbers'))")
        conn.execute("CREATE TABLE fine (id bigserial, n serial)")  # bigint: far from the end
        conn.execute("CREATE TABLE early (id serial)")  # integer at 50 %: fine
        conn.execute("SELECT setval('orders_id_seq', %s)", (at_95,))
        conn.execute("SELECT setval(pg_get_serial_sequence('invoices', 'id'), %s)", (at_95,))
        conn.execute("SELECT setval('ticket_numbers', %s)", (at_95,))
        conn.execute("SELECT setval('fine_id_seq', %s)", (at_95,))
        conn.execute("SELECT setval('early_id_seq', %s)", (INT4_MAX // 2,))

    result = check(pg_dsn, "sequences")

    assert result.status == "failed" and result.severity == "critical"
    assert sorted(objects(result)) == [
        "public.invoices.id",
        "public.orders.id",
        "public.tickets.number",
    ]
    tickets = next(i for i in result.items if i["table"] == "tickets")
    assert tickets["column_type"] == "integer" and tickets["sequence_type"] == "bigint"
    assert tickets["limited_by"] == "column" and tickets["max_value"] == INT4_MAX
    assert tickets["last_value"] == at_95 and tickets["percent_used"] == 95.0
    assert tickets["values_left"] == INT4_MAX - at_95
    assert "3 columns past 90%" in result.summary
    hint = result.hint or ""
    assert "ALTER TABLE public.orders ALTER COLUMN id TYPE bigint;" in hint
    assert "ALTER SEQUENCE public.orders_id_seq AS bigint;" in hint
    assert "ALTER TABLE public.tickets ALTER COLUMN number TYPE bigint;" in hint

    # run by a person, the printed statements are the fix
    with connect(pg_dsn) as conn:
        for line in hint.splitlines():
            if line.startswith("ALTER "):
                conn.execute(line)
    assert check(pg_dsn, "sequences").status == "ok"


def test_a_sequence_whose_own_maximum_is_near_fails_on_the_sequence(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE SEQUENCE small_seq AS smallint")
        conn.execute("CREATE TABLE codes (code bigint DEFAULT nextval('small_seq'))")
        conn.execute("SELECT setval('small_seq', 32000)")
    result = check(pg_dsn, "sequences")
    (item,) = result.items
    assert item["limited_by"] == "sequence" and item["max_value"] == 32_767
    assert "ALTER SEQUENCE public.small_seq AS bigint;" in (result.hint or "")


def test_a_lower_ratio_counts_more_sequences(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE early (id serial)")
        conn.execute("SELECT setval('early_id_seq', %s)", (INT4_MAX // 2,))
    assert check(pg_dsn, "sequences").status == "ok"
    assert objects(check(pg_dsn, "sequences", sequence_ratio=0.4)) == ["public.early.id"]
