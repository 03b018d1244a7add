"""``dbsight report --dsn``: the database's own part of the report — its checks, the statements
pg_stat_statements saw from clients dbsight does not instrument, and index advice for them —
made by the real checks, reader and advisor."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from dbsight.cli import app


def _uninstrumented_traffic(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(
            "CREATE TABLE parcels (id int PRIMARY KEY, tracking text NOT NULL, weight int NOT NULL)"
        )
        conn.execute(
            "INSERT INTO parcels SELECT g, 'T' || g, g % 50 FROM generate_series(1, 50000) g"
        )
        conn.execute("ANALYZE parcels")
        # the traffic the server counts from here on: the load is behind it, as in a service
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(30):  # literals: the server's $n text is what the report may show
            conn.execute(f"SELECT id, weight FROM parcels WHERE tracking = 'T{i * 97}'")


def test_report_with_a_dsn_holds_checks_server_side_statements_and_advice(
    pg_dsn: str, tmp_path: Path
) -> None:
    _uninstrumented_traffic(pg_dsn)
    out = tmp_path / "report.html"
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--dsn", pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    lookup = [s for s in doc["statements"] if "FROM parcels WHERE tracking" in s["normalized"]]
    assert len(lookup) == 1 and lookup[0]["calls"] == 30
    assert lookup[0]["instrumented"] is False  # only pg_stat_statements saw it
    assert [i["columns"] for i in doc["advice"]["indexes"]] == [["tracking"]], json.dumps(doc["advice"])
    names = {check["name"] for check in doc["checks"]["checks"]}
    assert {"duplicate_indexes", "unused_indexes", "sequences"} <= names
    assert "'T97'" not in result.stdout and "T97" not in json.dumps(doc["statements"])

    result = runner.invoke(app, ["report", "--dsn", pg_dsn, "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "CREATE INDEX CONCURRENTLY parcels_tracking_idx" in page
    assert "not instrumented" in page
    assert "T97" not in page


def test_the_analysis_own_queries_stay_out_of_the_pg_stat_statements_workload(
    pg_dsn: str,
) -> None:
    from dbsight.check import run_checks
    from dbsight.workload import from_pg_stat_statements

    _uninstrumented_traffic(pg_dsn)
    run_checks(pg_dsn, emit_events=False)
    runner = CliRunner()
    assert runner.invoke(app, ["advise", "--dsn", pg_dsn, "--pg-stat-statements", "--json"]).exit_code == 0
    seen = [s.normalized for s in from_pg_stat_statements(pg_dsn)]
    assert any("FROM parcels WHERE tracking" in text for text in seen)
    catalogs = [text for text in seen if "pg_class" in text or "pg_namespace" in text]
    assert catalogs == []
