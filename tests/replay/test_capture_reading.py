"""What the replay reads from a capture beyond one proxy run: both pool modes' parameters,
rotated files, and transaction records that stand without their BEGIN and COMMIT text."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import uuid
from pathlib import Path

import asyncpg
import psycopg
import pytest

from dbsight.proxy._capture import WorkloadCapture
from dbsight.proxy._config import ProxyConfig
from dbsight.replay import read_capture, replay
from dbsight.testing.proxy import RunningProxy


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_binary_parameters_are_captured_as_text_in_both_pool_modes(
    pg_dsn: str, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "capture.jsonl"
    proxy = RunningProxy(
        ProxyConfig(
            listen="127.0.0.1:0", upstream=pg_dsn, pool_mode=mode, capture=path,
            capture_params=True,
        )
    )  # fmt: skip
    key = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")

    async def client() -> None:
        conn = await asyncpg.connect(proxy.dsn(pg_dsn))
        try:
            for _ in range(2):  # the second run uses the prepared statement asyncpg cached
                await conn.fetch(
                    "SELECT $1::int8, $2::numeric, $3::timestamptz, $4::uuid, $5::bool, $6::text",
                    -7, decimal.Decimal("12.50"), dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
                    key, True, None,
                )  # fmt: skip
        finally:
            await conn.close()

    try:
        asyncio.run(client())
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            conn.execute("SELECT %s::int, %s::float8", (5, 0.25))
    finally:
        proxy.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    params = [r["params"] for r in records if r["type"] == "statement" and r.get("params")]
    expected = ["-7", "12.50", "2024-05-06 07:08:09+00", str(key), "true", None]
    assert params.count(expected) == 2, params
    assert ["5", "0.25"] in params


def test_rotated_files_are_read_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    capture = WorkloadCapture(path, max_bytes=600, backups=10, include_params=True)
    for n in range(12):
        capture.statement(
            1, started_at=100.0 + n, duration_s=0.001, normalized=f"SELECT $1 /* {n} */",
            fingerprint=f"{n:016x}", params=None, rows=1, sqlstate=None, in_transaction=False,
            sql=f"SELECT {n}",
        )  # fmt: skip
        capture.flush()
    capture.close()
    assert path.with_name("capture.jsonl.2").exists()  # rotated more than once
    (session,) = read_capture(path).sessions
    assert [s.sql for s in session.statements] == [f"SELECT {n}" for n in range(12)]
    assert len(list(read_capture(path, rotated=False).sessions[0].statements)) < 12


def test_transaction_records_begin_and_end_what_no_statement_did(
    pg_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
    path = tmp_path / "capture.jsonl"
    capture = WorkloadCapture(path, include_params=True)

    def insert(at: float, value: str, in_transaction: bool) -> None:
        capture.statement(
            1, started_at=at, duration_s=0.001, normalized="INSERT INTO t VALUES ($1)",
            fingerprint="00000000000000aa", params=[value], rows=1, sqlstate=None,
            in_transaction=in_transaction, sql="INSERT INTO t VALUES ($1)",
        )  # fmt: skip

    # the BEGIN and COMMIT were not captured with their text: the records say where they were
    capture.transaction(1, "begin", 1.0)
    insert(1.1, "a", True)
    insert(1.2, "b", True)
    capture.transaction(1, "commit", 1.3)
    insert(1.4, "c", False)
    capture.transaction(1, "begin", 1.5)
    insert(1.6, "d", True)
    capture.transaction(1, "rollback", 1.7)
    insert(1.8, "e", True)  # in a transaction no record began (the capture started in it)
    insert(1.9, "f", True)
    capture.transaction(1, "commit", 2.0)
    capture.close()
    report = replay(path, pg_dsn, speed=0, allow_writes=True)
    assert report.to_dict()["transactions_aligned"] == 6  # 3 BEGINs, 2 COMMITs, a ROLLBACK
    with psycopg.connect(pg_dsn) as conn:
        rows = dict(conn.execute("SELECT v, xmin::text FROM t").fetchall())
    assert set(rows) == {"a", "b", "c", "e", "f"}  # d was rolled back
    assert rows["a"] == rows["b"] != rows["c"]
    assert rows["e"] == rows["f"] not in (rows["a"], rows["c"])
