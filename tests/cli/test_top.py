"""``dbsight top``: the view drawn from hand-made summaries (rates, ordering, errors, widths),
and the command against real servers on loopback: an instrumented FastAPI service on a real
PostgreSQL (``--once``), stand-in endpoints that check the token or answer badly, and the
live view in a subprocess ended with Ctrl-C."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from asgi_server import serve_in_thread
from cli_servers import CannedEndpoint, json_answer
from fastapi import FastAPI
from rich.console import Console
from typer.testing import CliRunner

import dbsight
from dbsight.cli import app as cli
from dbsight.stats import ORDER_BY
from dbsight.top import (
    SORT_KEYS,
    SummaryError,
    TopOptions,
    interval_rates,
    parse_summary,
    render_top,
)

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
TOP = [sys.executable, "-c", "from dbsight.cli import main; main()", "top"]


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000Z"


def stmt(
    fingerprint: str,
    normalized: str,
    calls: int,
    total_s: float,
    *,
    errors: int = 0,
    rows: int | None = 0,
    p95_s: float = 0.0,
    first_seen: float = T0 - 3600,
    routes: dict[str, int] | None = None,
    plan_summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``top`` entry as ``FingerprintStats.to_dict()`` writes it."""
    mean = total_s / calls if calls else 0.0
    return {
        "fingerprint": fingerprint,
        "normalized": normalized,
        "operation": "select",
        "system": "postgresql",
        "tables": ["t"],
        "calls": calls,
        "rows": rows,
        "errors": errors,
        "total_time_s": total_s,
        "mean_time_s": mean,
        "min_time_s": mean,
        "max_time_s": mean,
        "p50_s": mean,
        "p95_s": p95_s or mean,
        "p99_s": p95_s or mean,
        "first_seen": first_seen,
        "last_seen": T0,
        "routes": routes or {},
        "databases": ["shop"],
        "plan_summary": plan_summary,
    }


def summary(at: float, *top: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "service": "shop",
        "generated_at": iso(at),
        "workers": 1,
        "top": list(top),
        "slow": [],
        "n_plus_one": [],
        **extra,
    }


def snap(at: float, *top: dict[str, Any], **extra: Any) -> Any:
    return parse_summary(summary(at, *top, **extra), polled_at=at - T0)


def draw(renderable: Any, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


USERS = "SELECT name FROM users WHERE id = $1"
ORDERS = "UPDATE orders SET status = $1 WHERE id = $2"


# -- parsing ----------------------------------------------------------------------------
def test_parse_summary_types_the_document() -> None:
    snapshot = snap(T0, stmt("a", USERS, 10, 0.5, routes={"/users/{id}": 10}))
    assert snapshot.service == "shop" and snapshot.workers == 1
    assert snapshot.generated_wall == T0
    [stats] = snapshot.statements
    assert (stats.fingerprint, stats.calls, stats.total_time_s) == ("a", 10, 0.5)
    assert stats.tables == ("t",) and stats.routes == {"/users/{id}": 10}


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ([1, 2], "expected a JSON object"),
        ({"service": "x"}, "no 'top' list"),
        ({"top": [{"calls": 1}]}, "top[0] is not a statement"),
        ({"top": [{"fingerprint": "a", "calls": "many"}]}, "top[0] has a malformed field"),
        ({"top": [], "slow": {}}, "'slow' is not a list"),
    ],
)
def test_parse_summary_rejects_what_is_not_a_summary(document: Any, complaint: str) -> None:
    with pytest.raises(SummaryError, match=re.escape(complaint)):
        parse_summary(document, 0.0)


# -- rates ------------------------------------------------------------------------------
def test_rates_are_the_difference_between_two_polls() -> None:
    before = snap(T0, stmt("a", USERS, 100, 1.0), stmt("b", ORDERS, 10, 1.0, errors=1))
    after = snap(T0 + 2, stmt("a", USERS, 300, 4.0), stmt("b", ORDERS, 20, 2.0, errors=5))
    rates = interval_rates(before, after)
    assert rates is not None
    assert rates.elapsed_s == 2.0
    assert rates.statements_per_s == pytest.approx((200 + 10) / 2)
    assert rates.errors_per_s == pytest.approx(4 / 2)
    assert rates.statements["a"].calls_per_s == pytest.approx(100.0)
    assert rates.statements["a"].time_share == pytest.approx(3.0 / 4.0)
    assert rates.statements["b"].time_share == pytest.approx(1.0 / 4.0)


def test_a_statement_missing_from_the_previous_poll() -> None:
    before = snap(T0, stmt("a", USERS, 100, 1.0))
    after = snap(
        T0 + 2,
        stmt("a", USERS, 100, 1.0),
        # first seen after the previous poll: all its calls are the interval's
        stmt("new", "DELETE FROM sessions", 8, 0.5, first_seen=T0 + 1),
        # seen long before, merely outside the previous list: its rate is unknown
        stmt("old", ORDERS, 5_000, 9.0, first_seen=T0 - 60),
    )
    rates = interval_rates(before, after)
    assert rates is not None
    assert rates.statements["new"].calls_per_s == pytest.approx(4.0)
    assert rates.statements["new"].time_share == pytest.approx(1.0)
    assert "old" not in rates.statements
    assert rates.statements_per_s == pytest.approx(4.0)


def test_a_restarted_service_counts_from_zero() -> None:
    before = snap(T0, stmt("a", USERS, 1_000, 10.0, errors=3))
    after = snap(T0 + 4, stmt("a", USERS, 40, 0.4, errors=1))
    rates = interval_rates(before, after)
    assert rates is not None
    assert rates.statements["a"].calls_per_s == pytest.approx(10.0)
    assert rates.errors_per_s == pytest.approx(0.25)


def test_no_rates_without_a_previous_poll_or_elapsed_time() -> None:
    current = snap(T0, stmt("a", USERS, 1, 0.1))
    assert interval_rates(None, current) is None
    assert interval_rates(current, current) is None


def test_rates_fall_back_to_the_poll_clock_without_a_readable_timestamp() -> None:
    before = parse_summary({"top": [stmt("a", USERS, 10, 0.1)]}, polled_at=100.0)
    after = parse_summary({"top": [stmt("a", USERS, 30, 0.3)]}, polled_at=105.0)
    rates = interval_rates(before, after)
    assert rates is not None and rates.elapsed_s == 5.0
    assert rates.statements["a"].calls_per_s == pytest.approx(4.0)


# -- rendering --------------------------------------------------------------------------
def test_the_view_shows_totals_rates_and_statements() -> None:
    before = snap(T0, stmt("a", USERS, 100, 1.0, routes={"/users/{id}": 90, "/": 10}))
    after = snap(T0 + 2, stmt("a", USERS, 300, 4.0, routes={"/users/{id}": 290, "/": 10}))
    text = draw(render_top(before, after, TopOptions(url="http://svc:1")))
    assert "shop" in text and "http://svc:1/metrics/summary" in text
    assert "100.0 statements/s" in text and "0.00 errors/s" in text
    assert "1 fingerprint " in text
    [row] = [line for line in table_rows(text) if USERS in line]
    assert row.split()[:3] == ["100.0", "100.0", "300"]  # calls/s, time %, calls
    assert "/users/{id}" in row


def test_the_first_poll_has_no_rates_yet() -> None:
    text = draw(render_top(None, snap(T0, stmt("a", USERS, 3, 0.1)), TopOptions()))
    assert "from the next poll on" in text
    [row] = [line for line in table_rows(text) if USERS in line]
    assert row.split()[:3] == ["–", "–", "3"]


SORTABLE = {
    "t": stmt("t", "SELECT 'most time'", 10, 9.0),
    "c": stmt("c", "SELECT 'most calls'", 900, 1.0),
    "m": stmt("m", "SELECT 'slowest on average'", 1, 3.0),
    "p": stmt("p", "SELECT 'worst p95'", 50, 1.0, p95_s=5.0),
    "e": stmt("e", "SELECT 'most errors'", 5, 0.1, errors=4),
    "r": stmt("r", "SELECT 'most rows'", 5, 0.1, rows=10_000),
}


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("total_time", "t"),
        ("calls", "c"),
        ("mean_time", "m"),
        ("p95", "p"),
        ("errors", "e"),
        ("rows", "r"),
    ],
)
def test_sort_orders_the_statements(sort: str, first: str) -> None:
    current = snap(T0, *SORTABLE.values())
    text = draw(render_top(None, current, TopOptions(sort=sort, limit=2, once=True)))
    rows = [line for line in table_rows(text) if "SELECT '" in line]
    assert len(rows) == 2
    assert SORTABLE[first]["normalized"] in rows[0]
    assert f"Top 2 of 6 statements by {sort}" in text


def test_unknown_rows_show_as_unknown_and_sort_last() -> None:
    # a statement whose clients never said its rows (a SELECT through sqlite3) has rows None
    unknown = stmt("u", "SELECT 'rows unknown'", 5, 0.1, rows=None)
    none = stmt("z", "SELECT 'no rows'", 5, 0.1, rows=0)
    current = snap(T0, unknown, none)
    assert {s.fingerprint: s.rows for s in current.statements} == {"u": None, "z": 0}
    text = draw(render_top(None, current, TopOptions(sort="rows", once=True)))
    rows = [line for line in table_rows(text) if "SELECT '" in line]
    assert "no rows" in rows[0] and "rows unknown" in rows[1]
    assert rows[1].split()[5] == "–"  # calls, total s, mean ms, p95 ms, p99 ms, rows


def test_sort_is_validated() -> None:
    with pytest.raises(ValueError, match="sort must be one of total_time, mean_time"):
        TopOptions(sort="fastest")


def test_statement_text_is_not_markup_and_is_one_line() -> None:
    tricky = "SELECT a[i], b[bold]\n  FROM t"
    text = draw(render_top(None, snap(T0, stmt("a", tricky, 1, 0.1)), TopOptions(once=True)))
    assert "SELECT a[i], b[bold] FROM t" in text


def test_a_narrow_terminal_keeps_the_statement_and_drops_columns() -> None:
    current = snap(T0, stmt("a", USERS, 10, 0.5, routes={"/users/{id}": 10}))
    wide = draw(render_top(None, current, TopOptions()), width=200)
    narrow = draw(render_top(None, current, TopOptions()), width=80)
    assert "p99 ms" in wide and "route" in wide
    assert "p99 ms" not in narrow and "total s" not in narrow
    assert "calls/s" in narrow and "p95 ms" in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert "SELECT name FROM users" in narrow


def test_a_failed_poll_is_shown_above_the_last_good_data() -> None:
    current = snap(T0, stmt("a", USERS, 10, 0.5))
    text = draw(render_top(None, current, TopOptions(), error="cannot connect to x"))
    assert "! cannot connect to x" in text
    assert "showing the poll of 2024-05-01T12:00:00.000Z; retrying every 2s" in text
    assert USERS in text
    nothing_yet = draw(render_top(None, None, TopOptions(), error="cannot connect to x"))
    assert "cannot connect to x" in nothing_yet and "retrying every 2s" in nothing_yet
    waiting = draw(render_top(None, None, TopOptions()))
    assert "waiting for the first answer from http://127.0.0.1:9187/metrics/summary" in waiting


def test_n_plus_one_and_slow_sections() -> None:
    plan = {
        "node_type": "Aggregate",
        "total_cost": 5745.2,
        "estimated_rows": 1,
        "seq_scans": ["order_items"],
    }
    current = snap(
        T0,
        stmt("s", "SELECT count(*) FROM order_items", 3, 0.9, plan_summary=plan),
        slow=[
            {
                "ts": "2024-05-01T12:00:01.250Z",
                "duration_ms": 310.0,
                "route": "/report",
                "fingerprint": "s",
                "normalized": "SELECT count(*) FROM order_items",
            },
            {
                "ts": "2024-05-01T12:00:00.100Z",
                "duration_ms": 200.0,
                "route": "/old",
                "fingerprint": "x",
                "normalized": "SELECT 'older'",
                "plan_error": "EXPLAIN timed out",
            },
        ],
        n_plus_one=[
            {
                "route": "/orders",
                "fingerprint": "n",
                "count": 25,
                "requests": 4,
                "total_ms": 60.5,
                "normalized": "SELECT * FROM customers WHERE id = $1",
            }
        ],
    )
    text = draw(render_top(None, current, TopOptions(once=True)))
    assert "N+1 patterns (latest)" in text
    [finding] = [line for line in table_rows(text) if "FROM customers" in line]
    assert finding.split()[:4] == ["/orders", "25", "4", "60.5"]
    assert "Slow queries (latest)" in text
    [slow] = [line for line in table_rows(text) if line.startswith("12:00:01")]
    # the record has no plan: the statistics table's plan of the statement fills in
    assert "310.0" in slow and "Seq Scan on order_items · cost 5745 · ~1 rows" in slow
    assert "EXPLAIN timed out" in text
    hidden = draw(render_top(None, current, TopOptions(once=True, details=0)))
    assert "N+1 patterns" not in hidden and "Slow queries" not in hidden


def test_slow_queries_show_their_first_plan_finding() -> None:
    message = "Seq Scan on order_items removes 99.8 % of 300,000 rows"
    finding = {"kind": "seq_scan", "severity": "critical", "message": message}
    plan = {"node_type": "Aggregate", "seq_scans": ["order_items"], "findings": [finding]}
    record = {
        "ts": "2024-05-01T12:00:01.250Z", "duration_ms": 310.0, "route": "/report",
        "fingerprint": "s", "normalized": "SELECT count(*) FROM order_items",
    }  # fmt: skip
    # the statement's plan summary fills in for a record explained before
    current = snap(
        T0, stmt("s", "SELECT count(*) FROM order_items", 3, 0.9, plan_summary=plan),
        slow=[record, {**record, "fingerprint": "t", "ts": "2024-05-01T12:00:02.000Z"}],
    )  # fmt: skip
    text = draw(render_top(None, current, TopOptions(once=True)))
    [row] = [line for line in table_rows(text) if line.startswith("12:00:01")]
    assert message in row
    [other] = [line for line in table_rows(text) if line.startswith("12:00:02")]
    assert "removes" not in other
    # the record's own findings first
    own = {**record, "findings": [{**finding, "message": "Sort spilled 9 kB to disk"}]}
    text = draw(render_top(None, snap(T0, stmt("s", "x", 3, 0.9, plan_summary=plan), slow=[own]),
                           TopOptions(once=True)))  # fmt: skip
    assert "Sort spilled 9 kB to disk" in text and message not in text


def test_once_mode_has_no_rate_columns() -> None:
    text = draw(
        render_top(None, snap(T0, stmt("a", USERS, 7, 0.5, errors=2)), TopOptions(once=True))
    )
    assert "calls/s" not in text and "every" not in text
    assert "1 fingerprint  7 calls  2 errors  sorted by total_time" in text


# -- the command against a real instrumented service -------------------------------------
def shop_service(dsn: str) -> FastAPI:
    """A FastAPI service instrumented by dbsight, with an instrumented asyncpg pool that
    lives in the server's own event loop."""
    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool["db"] = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        handle = dbsight.instrument(pool["db"])
        try:
            yield
        finally:
            handle.uninstrument()
            await pool["db"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, Any]:
        name = await pool["db"].fetchval("SELECT name FROM top_users WHERE id = $1", user_id)
        return {"id": user_id, "name": name}

    @app.get("/orders")
    async def orders() -> list[float]:
        ids = await pool["db"].fetch("SELECT id FROM top_orders ORDER BY id")
        return [  # one query per order: an N+1 pattern
            float(await pool["db"].fetchval("SELECT total FROM top_orders WHERE id = $1", r["id"]))
            for r in ids
        ]

    @app.get("/report")
    async def report() -> int:
        return int(
            await pool["db"].fetchval(
                "SELECT count(*) FROM top_users WHERE pg_sleep(0.03) IS NOT NULL"
            )
        )

    dbsight.instrument(app)
    return app


@pytest.fixture
def shop(pg_dsn: str, fresh_runtime: Any) -> Iterator[str]:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE top_users (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO top_users SELECT g, 'user ' || g FROM generate_series(1, 3) g")
        conn.execute("CREATE TABLE top_orders (id int PRIMARY KEY, total numeric NOT NULL)")
        conn.execute("INSERT INTO top_orders SELECT g, g * 1.5 FROM generate_series(1, 4) g")
    dbsight.configure(
        dbsight.Settings(
            service_name="top-test-shop",
            tracing_enabled=False,
            slow_query_threshold_ms=20,
            n_plus_one_threshold=3,
            n_plus_one_min_total_ms=0,
        )
    )
    with serve_in_thread(shop_service(pg_dsn)) as url:
        yield url


def test_once_shows_the_statements_of_a_running_service(shop: str) -> None:
    with httpx.Client(base_url=shop, timeout=30) as client:
        for user_id in (1, 2, 3, 1, 2):
            assert client.get(f"/users/{user_id}").status_code == 200
        assert client.get("/orders").status_code == 200
        assert client.get("/report").status_code == 200
        # the slow record is written once its EXPLAIN plan arrived (or gave up)
        deadline = time.monotonic() + 30
        while not client.get("/metrics/summary").json()["slow"]:
            assert time.monotonic() < deadline, "the slow query never reached the summary"
            time.sleep(0.05)

    result = CliRunner().invoke(cli, ["top", "--url", shop, "--once", "--width", "220"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "top-test-shop" in out and f"{shop}/metrics/summary" in out
    [users] = [line for line in out.splitlines() if "SELECT name FROM top_users" in line]
    assert users.split()[0] == "5" and "/users/{user_id}" in users
    assert "SELECT total FROM top_orders WHERE id = $1" in out
    assert "N+1 patterns (latest)" in out
    [finding] = [
        line
        for line in out.splitlines()
        if line.startswith("/orders") and "top_orders WHERE id" in line
    ]
    assert finding.split()[1] == "4"  # per request
    assert "Slow queries (latest)" in out and "pg_sleep" in out
    assert "Seq Scan on top_users" in out  # the slow statement's EXPLAIN plan, summarised


def test_limit_limits_the_rows_not_the_totals(shop: str) -> None:
    with httpx.Client(base_url=shop, timeout=30) as client:
        for user_id in (1, 2, 3):
            assert client.get(f"/users/{user_id}").status_code == 200
        assert client.get("/orders").status_code == 200  # 1 + 4 statements
        totals = client.get("/metrics/summary").json()["totals"]
    assert totals["fingerprints"] == 3 and totals["calls"] == 8

    result = CliRunner().invoke(cli, ["top", "--url", shop, "--once", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "3 fingerprints  8 calls  0 errors" in result.stdout
    assert "Top 1 of 3 statements by total_time" in result.stdout
    statements = result.stdout.partition("N+1 patterns")[0]
    rows = [line for line in statements.splitlines() if "FROM top_" in line]
    assert len(rows) == 1


def test_live_rates_count_every_statement_not_only_the_listed_ones() -> None:
    def poll(at: float, calls: int, other_calls: int) -> Any:
        return snap(
            at,
            stmt("a", USERS, calls, calls * 0.01),
            totals={
                "fingerprints": 7,
                "calls": calls + other_calls,
                "errors": 0,
                "rows": 0,
                "total_time_s": calls * 0.01 + other_calls * 0.01,
            },
        )

    before, after = poll(T0, 100, 300), poll(T0 + 2, 200, 500)
    text = draw(render_top(before, after, TopOptions(limit=1)))
    assert "150.0 statements/s" in text  # (100 + 200) / 2 s, not the listed 100 / 2 s
    assert "7 fingerprints" in text
    [row] = [line for line in table_rows(text) if USERS in line]
    assert row.split()[:2] == ["50.0", "33.3"]  # a third of the database time


def test_once_exits_1_when_the_endpoint_cannot_be_read() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        result = CliRunner().invoke(cli, ["top", "--url", url, "--once"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"dbsight top: cannot connect to {url}/metrics/summary")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((500, "text/plain", b"internal error"), "answered 500 Internal Server Error: internal"),
        ((404, "application/json", b"{}"), "answered 404 Not Found: is it a dbsight service"),
        ((200, "text/html", b"<html>hi</html>"), "did not answer JSON (text/html)"),
        ((200, "application/json", b"[1,2]"), "did not answer a dbsight summary"),
    ],
)
def test_once_exits_1_on_a_bad_answer(answer: Any, message: str) -> None:
    with serve_in_thread(CannedEndpoint(lambda n, h: answer)) as url:
        result = CliRunner().invoke(cli, ["top", "--url", url, "--once"])
    assert result.exit_code == 1
    assert message in result.stderr


def test_the_token_is_sent_as_a_bearer_token() -> None:
    token = "s3cret-admin-token"

    def answer(n: int, headers: dict[str, str]) -> Any:
        if headers.get("authorization") != f"Bearer {token}":
            return 401, "application/json", b'{"error":"unauthorized"}'
        return json_answer(summary(T0, stmt("a", USERS, 3, 0.1)))

    endpoint = CannedEndpoint(answer)
    with serve_in_thread(endpoint) as url:
        refused = CliRunner().invoke(cli, ["top", "--url", url, "--once"])
        given = CliRunner().invoke(cli, ["top", "--url", url, "--once", "--token", token])
        from_env = CliRunner().invoke(
            cli, ["top", "--url", url, "--once"], env={"DBSIGHT_ADMIN_TOKEN": token}
        )
    assert refused.exit_code == 1
    assert "answered 401 Unauthorized: a token is required or was refused (--token)" in (
        refused.stderr
    )
    assert token not in refused.output
    for result in (given, from_env):
        assert result.exit_code == 0, result.output
        assert USERS in result.stdout
    assert [h.get("authorization") for h in endpoint.requests] == [
        None,
        f"Bearer {token}",
        f"Bearer {token}",
    ]


def test_a_bad_sort_is_a_usage_error_listing_what_stats_top_accepts() -> None:
    result = CliRunner().invoke(cli, ["top", "--sort", "fastest", "--once"])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    assert f"'fastest' is not one of {', '.join(ORDER_BY)}" in message


def test_sort_accepts_exactly_what_stats_top_accepts() -> None:
    assert tuple(SORT_KEYS) == ORDER_BY
    with pytest.raises(ValueError):
        dbsight.stats.top(1, order_by="fastest")
    with pytest.raises(ValueError, match="sort must be one of"):
        TopOptions(sort="fastest")
    current = snap(T0, stmt("a", USERS, 1, 0.001), stmt("b", ORDERS, 9, 0.002))
    for order in ORDER_BY:
        draw(render_top(None, current, TopOptions(sort=order, once=True)))


def test_max_time_sorts_by_the_slowest_single_run() -> None:
    slow_once = {**stmt("s", "SELECT 'slow once'", 10, 0.5), "max_time_s": 0.4}
    steady = {**stmt("t", "SELECT 'most time'", 10, 9.0), "max_time_s": 0.9}
    fastest = {**stmt("f", "SELECT 'fast'", 10, 0.1), "max_time_s": 2.0}
    current = snap(T0, slow_once, steady, fastest)
    text = draw(render_top(None, current, TopOptions(sort="max_time", once=True)))
    rows = [line for line in table_rows(text) if "SELECT '" in line]
    assert "fast" in rows[0] and "most time" in rows[1]


# -- the live view -----------------------------------------------------------------------
def run_live_until(
    endpoint: CannedEndpoint, requests: int, signum: int = signal.SIGINT
) -> subprocess.CompletedProcess[str]:
    """``dbsight top`` (live) in a subprocess until ``requests`` polls arrived, then
    ``signum``. Its output is a pipe: every poll is printed as plain text."""
    with serve_in_thread(endpoint) as url:
        process = subprocess.Popen(
            [*TOP, "--url", url, "--interval", "0.1", "--width", "160"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            endpoint.wait_for_requests(requests)
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def last_poll(stdout: str) -> str:
    """The last snapshot printed (each starts with the title line)."""
    return "dbsight top" + stdout.rpartition("dbsight top")[2]


def growing(n: int, headers: dict[str, str]) -> Any:
    """Every poll: 2 seconds later on the service's clock, 100 more calls."""
    return json_answer(summary(T0 + 2 * n, stmt("a", USERS, 100 * n, 0.01 * n)))


def test_live_view_retries_after_errors_and_exits_0_on_ctrl_c() -> None:
    def answer(n: int, headers: dict[str, str]) -> Any:
        if n == 0:
            return 503, "text/plain", b"starting"
        return growing(n, headers)

    done = run_live_until(CannedEndpoint(answer), requests=4)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "50.0 statements/s" in done.stdout
    [row] = [line for line in last_poll(done.stdout).splitlines() if USERS in line]
    assert row.split()[:2] == ["50.0", "100.0"]


def test_into_a_pipe_each_poll_is_printed_while_it_runs() -> None:
    endpoint = CannedEndpoint(growing)
    with serve_in_thread(endpoint) as url:
        process = subprocess.Popen(
            [*TOP, "--url", url, "--interval", "0.1", "--width", "160"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            fd = process.stdout.fileno()
            output = ""
            deadline = time.monotonic() + 60
            # read while it runs: nothing may wait for the view to stop
            while output.count("dbsight top  shop") < 3:
                assert time.monotonic() < deadline, f"3 polls were not printed: {output!r}"
                if select.select([fd], [], [], 1.0)[0]:
                    chunk = os.read(fd, 65536)
                    assert chunk, f"the output ended: {output!r}"
                    output += chunk.decode()
            assert process.poll() is None
            assert "50.0 statements/s" in output
            assert "\x1b[" not in output  # plain text, no escapes
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_sigterm_ends_the_live_view_cleanly() -> None:
    done = run_live_until(CannedEndpoint(growing), requests=3, signum=signal.SIGTERM)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "50.0 statements/s" in done.stdout


def test_on_a_terminal_the_view_is_drawn_full_screen_and_sigterm_ends_it() -> None:
    endpoint = CannedEndpoint(growing)
    with serve_in_thread(endpoint) as url:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [*TOP, "--url", url, "--interval", "0.1", "--width", "160"],
            stdin=follower,
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        os.close(follower)
        screen = b""
        try:
            endpoint.wait_for_requests(3)
            deadline = time.monotonic() + 60
            while b"50.0" not in screen:  # the view, redrawn after the second poll
                assert time.monotonic() < deadline, screen[-2000:]
                if select.select([leader], [], [], 1.0)[0]:
                    screen += os.read(leader, 65536)
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 60
            while process.poll() is None:  # drain the terminal while it restores it
                assert time.monotonic() < deadline, "dbsight top did not stop"
                if select.select([leader], [], [], 0.1)[0]:
                    try:
                        screen += os.read(leader, 65536)
                    except OSError:
                        break
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(leader)
            assert process.stderr is not None
            stderr = process.stderr.read().decode()
            process.stderr.close()
    assert b"\x1b[?1049h" in screen  # the alternate screen, like top(1)
    assert b"statements/s" in screen
    assert b"\x1b[?1049l" in screen  # given back on exit
    assert "Traceback" not in stderr


def test_live_view_shows_a_failing_endpoint_and_keeps_polling() -> None:
    endpoint = CannedEndpoint(lambda n, h: (500, "text/plain", b"database is down"))
    done = run_live_until(endpoint, requests=3)
    assert done.returncode == 0, done.stderr
    assert "answered 500 Internal Server Error: database is down" in last_poll(done.stdout)
    assert "retrying every 0.1s" in done.stdout
