"""`load_workload`: a capture, a running proxy's summary and pg_stat_statements read at once,
joined without counting a statement twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy
from dbsight.workload import WorkloadError, load_workload

TOKEN = "a-token-of-ours"


def test_three_views_of_one_traffic_join(
    pg_dsn: str, tmp_path: Path, configure: Callable[..., Any]
) -> None:
    configure()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, kind text)")
        conn.execute("INSERT INTO events SELECT g, 'k' || g % 4 FROM generate_series(1, 100) g")
    capture = tmp_path / "workload.jsonl"
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="transaction", capture=capture,
        admin="127.0.0.1:0", admin_token=TOKEN,
    ))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            for i in range(12):
                conn.execute("SELECT kind FROM events WHERE id = %s", (i,))
        with psycopg.connect(pg_dsn, autocommit=True) as conn:  # around the proxy
            conn.execute("SELECT count(*) FROM events WHERE kind = 'k1'")
        admin = f"http://127.0.0.1:{proxy.server.admin_port}"
        seen: list[tuple[str, int, int]] = []
        proxy.call(_flush(proxy))
        workload = load_workload(
            captures=[capture], urls=[admin], pg_stat_statements=pg_dsn, token=TOKEN,
            progress=lambda stage, done, total: seen.append((stage, done, total)),
        )
    finally:
        proxy.close()

    (lookup,) = [s for s in workload if s.normalized == "SELECT kind FROM events WHERE id = $1"]
    assert lookup.calls == 12  # seen three times, counted once
    assert set(lookup.sources) == {"capture", "summary", "pg_stat_statements"}
    assert lookup.instrumented and lookup.p95_s is not None
    (around,) = [s for s in workload if "count(*) FROM events" in s.normalized]
    assert around.sources == ("pg_stat_statements",) and not around.instrumented
    stages = {stage for stage, _, _ in seen}
    assert stages == {"reading capture", "reading summaries", "reading pg_stat_statements"}
    assert all(done <= total for _, done, total in seen)
    assert seen[-1] == ("reading pg_stat_statements", 1, 1)


async def _flush(proxy: RunningProxy) -> None:
    proxy.server.capture.flush()


def test_no_source_is_an_error() -> None:
    with pytest.raises(WorkloadError, match="no workload given"):
        load_workload()
