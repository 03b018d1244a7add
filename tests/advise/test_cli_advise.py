"""``dbsight advise``: usage errors (exit 2), HypoPG missing (exit 1, one line), the advice
from a proxy capture with parameters (``--workload``) and from pg_stat_statements, as JSON and
as tables, and ``--verify`` announcing what it will build before it builds it.

The workload loaders live in dbsight.workload; where this tree does not have them yet, the
`loaders` fixture puts in small readers of the same sources (the capture's statement records,
pg_stat_statements' rows), so the command is exercised end to end either way."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from advisor_schema import index_defs, setup
from typer.testing import CliRunner

import dbsight.workload
from dbsight.cli import app as cli
from dbsight.sql import analyze
from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy
from dbsight.workload import Sample, Workload, WorkloadStatement

SQL = "SELECT id, total FROM orders WHERE customer_id = $1"


def _from_capture(path: Path, *, rotated: bool = True) -> Workload:
    """The capture's statement records by fingerprint (this test's stand-in for the loader)."""
    statements: dict[str, WorkloadStatement] = {}
    ats: list[float] = []
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if record.get("type") != "statement":
            continue
        ats.append(record["at"])
        info = analyze(record.get("sql") or record["normalized"], "postgresql")
        have = statements.setdefault(record["fingerprint"], WorkloadStatement(
            fingerprint=record["fingerprint"], normalized=record["normalized"],
            operation=info.operation, tables=info.tables, calls=0, total_time_s=0.0,
            sources=("capture",),
        ))  # fmt: skip
        have.calls += 1
        have.total_time_s += record["duration_s"]
        params = record.get("params")
        if "sql" in record or params is not None:
            sql = record.get("sql") or record["normalized"]
            have.samples.append(Sample(sql, tuple(params) if params is not None else None))
    return Workload(statements, max(ats) - min(ats) if ats else None)


def _from_pg_stat_statements(dsn: str) -> Workload:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT query, calls, total_exec_time, rows FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    workload = Workload()
    for query, calls, total_ms, n in rows:
        info = analyze(query, "postgresql")
        workload.add(WorkloadStatement(
            fingerprint=info.fingerprint, normalized=info.normalized, operation=info.operation,
            tables=info.tables, calls=calls, total_time_s=total_ms / 1000.0, rows=n,
            sources=("pg_stat_statements",), instrumented=False,
        ))  # fmt: skip
    return workload


@pytest.fixture
def loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real loaders when this tree has them, the stand-ins above otherwise."""
    if not hasattr(dbsight.workload, "from_capture"):
        monkeypatch.setattr(dbsight.workload, "from_capture", _from_capture, raising=False)
    if not hasattr(dbsight.workload, "from_pg_stat_statements"):
        monkeypatch.setattr(dbsight.workload, "from_pg_stat_statements",
                            _from_pg_stat_statements, raising=False)  # fmt: skip


@pytest.fixture
def shop(pg_dsn: str) -> str:
    setup(pg_dsn)
    return pg_dsn


def _capture(path: Path, customers: list[int]) -> Path:
    """A capture as dbsight proxy --capture writes it with capture_params: the extended
    protocol's statement with $1 and its parameter values."""
    lines = [json.dumps({"type": "session_start", "session": 1, "at": 1000.0, "user": "app"})]
    info = analyze(SQL, "postgresql")
    for n, customer in enumerate(customers):
        lines.append(json.dumps({
            "type": "statement", "session": 1, "at": 1000.0 + n * 0.5, "duration_s": 0.004,
            "normalized": info.normalized, "fingerprint": info.fingerprint, "rows": 3,
            "sqlstate": None, "in_transaction": False, "sql": SQL, "params": [str(customer)],
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def advise(*args: str) -> Any:
    return CliRunner().invoke(cli, ["advise", *args])


def test_a_workload_source_is_required(tmp_path: Path) -> None:
    result = advise("--dsn", "postgresql://u@127.0.0.1:1/db")
    assert result.exit_code == 2
    assert result.stderr.startswith("dbsight advise: a workload is needed: --workload FILE")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pg-stat-statements", "--keep"], "--keep keeps the indexes --verify builds"),
        (["--workload", "/nonexistent/capture.jsonl"], "--workload: no such file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = advise("--dsn", "postgresql://u@127.0.0.1:1/db", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bad_dsn_is_a_usage_error() -> None:
    result = advise("--dsn", "not a dsn = = =", "--pg-stat-statements")
    assert result.exit_code == 2
    assert "--dsn: not a PostgreSQL connection string" in result.stderr


def test_hypopg_not_enabled_exits_1_and_says_what_to_do(pg_dsn: str, tmp_path: Path) -> None:
    capture = _capture(tmp_path / "capture.jsonl", [1, 2])
    result = advise("--dsn", pg_dsn, "--workload", str(capture))
    assert result.exit_code == 1
    assert "HypoPG is installed on the server but not enabled" in result.stderr
    assert "--create-extension" in result.stderr
    assert "Traceback" not in result.output


def test_create_extension_says_it_changes_the_database(
    pg_dsn: str, tmp_path: Path, loaders: None
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int, customer_id int, total numeric)")
        conn.execute("INSERT INTO orders SELECT i, i % 5000, i FROM generate_series(1, 30000) i")
        conn.execute("ANALYZE orders")
    capture = _capture(tmp_path / "capture.jsonl", [1, 2, 3])
    result = advise("--dsn", pg_dsn, "--workload", str(capture), "--create-extension", "--json")
    assert result.exit_code == 0, result.output
    assert "CREATE EXTENSION hypopg" in result.stderr and "changes the database" in result.stderr
    assert json.loads(result.stdout)["indexes"][0]["columns"] == ["customer_id"]


def test_json_advice_from_a_capture_with_parameters(
    shop: str, tmp_path: Path, loaders: None
) -> None:
    customers = random.Random(5).sample(range(1, 20000), 40)
    capture = _capture(tmp_path / "capture.jsonl", customers)
    result = advise("--dsn", shop, "--workload", str(capture), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) >= {"indexes", "rejected", "findings"}
    [index] = document["indexes"]
    assert set(index) >= {"table", "columns", "include", "where", "create", "statements",
                          "write_overhead", "reason"}  # fmt: skip
    assert index["table"] == "orders" and index["columns"][0] == "customer_id"
    assert index["create"].startswith("CREATE INDEX CONCURRENTLY ")
    [served] = index["statements"]
    assert served["normalized"] == "SELECT id, total FROM orders WHERE customer_id = $1"
    assert served["calls"] == 40 and served["plan"] == "samples"
    assert served["cost_after"] < served["cost_before"] / 10
    assert served["measured_before_ms"] is None
    for customer in customers:  # parameter values never printed
        assert f"'{customer}'" not in result.stdout and f'"{customer}"' not in result.stdout


def test_tables_from_pg_stat_statements(shop: str, loaders: None) -> None:
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        for customer in range(1, 30):
            conn.execute("SELECT id, total FROM orders WHERE customer_id = %s", (customer,)).fetchall()
        for n in range(5):
            conn.execute("SELECT count(*) FROM events WHERE kind = %s", (f"k{n}",)).fetchall()
    result = CliRunner().invoke(
        cli, ["advise", "--dsn", shop, "--pg-stat-statements"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Advised indexes" in out
    for header in ("index", "statements served", "cost before → after", "measured speed-up",
                   "write overhead", "reason"):  # fmt: skip
        assert header in out
    assert "orders (\"customer_id\"" in out or 'ON orders ("customer_id"' in out
    assert "WHERE customer_id = $1" in out
    assert "statements planned" in out
    assert "customer_id = 7" not in out and "'k3'" not in out


def test_verify_announces_builds_measures_and_drops(
    shop: str, tmp_path: Path, loaders: None
) -> None:
    before = index_defs(shop, "orders")
    capture = _capture(tmp_path / "capture.jsonl", [7, 901, 15000, 3, 4])
    result = advise("--dsn", shop, "--workload", str(capture), "--verify", "--json")
    assert result.exit_code == 0, result.output
    stderr = result.stderr
    assert "dbsight advise --verify will build 1 index(es) on " in stderr
    assert "CREATE INDEX CONCURRENTLY" in stderr and "drop the indexes again" in stderr
    assert "password" not in stderr
    [index] = json.loads(result.stdout)["indexes"]
    [served] = index["statements"]
    assert served["measured_before_ms"] > 3 * served["measured_after_ms"]
    assert index["verified"] is True and index["kept"] is False
    assert index_defs(shop, "orders") == before


def test_verify_keep(shop: str, tmp_path: Path, loaders: None) -> None:
    capture = _capture(tmp_path / "capture.jsonl", [7, 901, 15000])
    result = advise("--dsn", shop, "--workload", str(capture), "--verify", "--keep")
    assert result.exit_code == 0, result.output
    assert "keep the indexes (--keep)" in result.stderr
    assert "(kept)" in result.stdout
    assert any("(customer_id" in d for d in index_defs(shop, "orders"))


def test_the_issue_s_scenario_from_a_capture_without_parameters(
    shop: str, tmp_path: Path, loaders: None
) -> None:
    """Missing indexes including a join, an index that already covers its statement, a
    table written far more than read: captured without parameters (normalized text only),
    advised with --json."""
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("CREATE INDEX customers_email ON customers (email)")
    texts = {
        "join": ("SELECT li.product, li.qty FROM line_items li JOIN orders o "
                 "ON o.id = li.order_id WHERE o.customer_id = $1", 300, 0.02),
        "covered": ("SELECT id, country FROM customers WHERE email = $1", 500, 0.0002),
        "missing": ("SELECT id, total FROM orders WHERE status = $1 AND created_at > $2 "
                    "ORDER BY created_at", 200, 0.01),
        "events_read": ("SELECT id FROM events WHERE kind = $1", 2, 0.003),
        "events_write": ("INSERT INTO events (kind, payload, at) VALUES ($1, $2, $3)", 2500,
                         0.0001),
    }  # fmt: skip
    lines, at = [], 1000.0
    for text, calls, duration in texts.values():
        info = analyze(text, "postgresql")
        for _ in range(calls):
            at += 0.01
            lines.append(json.dumps({
                "type": "statement", "session": 1, "at": at, "duration_s": duration,
                "normalized": info.normalized, "fingerprint": info.fingerprint, "rows": 1,
                "sqlstate": None, "in_transaction": False,
            }))  # fmt: skip
    capture = tmp_path / "capture.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    result = advise("--dsn", shop, "--workload", str(capture), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    fingerprints = {k: analyze(v[0], "postgresql").fingerprint for k, v in texts.items()}
    by_table = {(i["table"], i["columns"][0]): i for i in document["indexes"]}
    assert ("orders", "customer_id") in by_table and ("line_items", "order_id") in by_table
    for key in (("orders", "customer_id"), ("line_items", "order_id")):
        assert fingerprints["join"] in {s["fingerprint"] for s in by_table[key]["statements"]}
    served = {s["fingerprint"] for i in document["indexes"] for s in i["statements"]}
    assert fingerprints["missing"] in served
    assert fingerprints["covered"] not in served
    assert all(i["table"] != "customers" for i in document["indexes"])
    assert all(i["table"] != "events" for i in document["indexes"])
    [events] = [r for r in document["rejected"] if r["table"] == "events"]
    assert "events is written 1,250 times for each read" in events["reason"]
    assert {s["plan"] for i in document["indexes"] for s in i["statements"]} == {"generic"}


def test_advice_from_a_real_proxy_capture_with_parameters(
    shop: str, tmp_path: Path, loaders: None
) -> None:
    """Traffic through dbsight proxy --capture (parameters captured), then advised."""
    path = tmp_path / "workload.jsonl"
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=shop, pool_mode="transaction", capture=path,
        capture_params=True,
    ))  # fmt: skip
    try:
        with psycopg.connect(proxy.dsn(shop), autocommit=True) as conn:
            for customer in random.Random(3).sample(range(1, 20000), 30):
                # %t: sent in text format, as most drivers send parameters.
                conn.execute("SELECT id, total FROM orders WHERE customer_id = %t",
                             (customer,)).fetchall()  # fmt: skip
            # Binary parameters (kept as bytes in the capture) are no sample, and no error.
            conn.execute("SELECT id, total FROM orders WHERE customer_id = %b", (5,)).fetchall()
    finally:
        proxy.close()
    result = advise("--dsn", shop, "--workload", str(path), "--json", "--verify")
    assert result.exit_code == 0, result.output
    [index] = json.loads(result.stdout)["indexes"]
    assert index["table"] == "orders" and index["columns"][0] == "customer_id"
    [served] = index["statements"]
    assert served["calls"] == 31 and served["plan"] == "samples"
    assert served["measured_before_ms"] > 3 * served["measured_after_ms"]
