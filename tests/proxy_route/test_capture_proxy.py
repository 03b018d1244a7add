"""``dbsight proxy --capture``: the statement stream of real clients, as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_capture_records_sessions_statements_and_transactions(
    pg_dsn: str, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "workload.jsonl"
    proxy = RunningProxy(
        ProxyConfig(listen="127.0.0.1:0", upstream=pg_dsn, pool_mode=mode, capture=path)
    )
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            conn.execute("SELECT %s::int + 40", (2,))
            with conn.transaction():
                conn.execute("SELECT 'secret literal'")
            with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
                conn.execute("SELECT 1 / 0")
    finally:
        proxy.close()  # flushes the capture
    text = path.read_text()
    assert "secret literal" not in text  # normalized text only
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    statements = [r for r in records if r["type"] == "statement"]
    assert any("$1::int + $2" in r["normalized"] or "+ $" in r["normalized"] for r in statements)
    failed = [r for r in statements if r.get("sqlstate") == "22012"]
    assert len(failed) == 1 and failed[0]["in_transaction"] is True
    transactions = [r["event"] for r in records if r["type"] == "transaction"]
    assert transactions == ["begin", "commit", "begin", "rollback"]
    assert len({r["session"] for r in records}) == 1


def test_parameters_are_captured_only_when_enabled(pg_dsn: str, tmp_path: Path) -> None:
    for enabled in (False, True):
        path = tmp_path / f"params-{enabled}.jsonl"
        proxy = RunningProxy(ProxyConfig(
            listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="transaction", capture=path,
            capture_params=enabled,
        ))
        try:
            with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
                conn.execute("SELECT %s::text, %s::int", ("a value", None))
        finally:
            proxy.close()
        text = path.read_text()
        assert ("a value" in text) is enabled
        if enabled:
            (statement,) = [
                json.loads(line) for line in text.splitlines() if '"statement"' in line
            ]
            assert statement["params"] == ["a value", None]
