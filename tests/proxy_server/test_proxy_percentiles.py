"""The percentiles `dbsight proxy` reports on its admin port (``/metrics/summary``, which
``dbsight top`` reads), for a statement that ran only twice."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

import dbsight
from dbsight.cli import app as cli

PROBE = "SELECT pg_sleep(%s) AS percentile_probe"


def test_two_slow_statements_through_the_proxy(
    proxy_factory: Any, pg_dsn: str, fresh_runtime: Any
) -> None:
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    proxy = proxy_factory(pg_dsn, admin="127.0.0.1:0")
    admin = f"http://127.0.0.1:{proxy.server.admin_port}"
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        conn.execute("SELECT 1")  # the first statement a process analyses pays for the set-up
        conn.execute(PROBE, (0.0005,))  # one fast call and one slow call of the same statement
        conn.execute(PROBE, (0.06,))

    def probe_row() -> dict[str, Any] | None:
        top = httpx.get(f"{admin}/metrics/summary", params={"limit": 50}).json()["top"]
        rows = [row for row in top if "percentile_probe" in row["normalized"]]
        return rows[0] if rows and rows[0]["calls"] == 2 else None

    deadline = time.monotonic() + 10  # recorded just after the answer is relayed
    while (row := probe_row()) is None:
        assert time.monotonic() < deadline, "the proxy never recorded both statements"
        time.sleep(0.05)

    fast, slow = row["min_time_s"], row["max_time_s"]
    assert row["mean_time_s"] == pytest.approx((fast + slow) / 2)
    # numpy's linear method on two values: q of the way from the faster to the slower
    assert row["p95_s"] == pytest.approx(fast + 0.95 * (slow - fast), rel=1e-9)
    assert row["p50_s"] == pytest.approx(fast + 0.50 * (slow - fast), rel=1e-9)
    assert row["p99_s"] == pytest.approx(fast + 0.99 * (slow - fast), rel=1e-9)
    assert fast <= row["p50_s"] <= row["p95_s"] <= row["p99_s"] <= slow

    # dbsight top shows the same figures
    result = CliRunner().invoke(cli, ["top", "--url", admin, "--once", "--width", "220"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "percentile_probe" in line]
    calls, _total, mean_ms, p95_ms, p99_ms = line.split()[:5]
    assert calls == "2"
    assert float(p95_ms) == pytest.approx(row["p95_s"] * 1e3, abs=0.051)
    assert float(p99_ms) == pytest.approx(row["p99_s"] * 1e3, abs=0.051)
    assert float(p95_ms) > float(mean_ms)
