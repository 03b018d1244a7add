"""A proxy capture as a workload: statement records added up per fingerprint, rotated files
read oldest first, samples from the records that carry the statement's own text."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy
from dbsight.workload import (
    MAX_SAMPLES,
    Sample,
    WorkloadError,
    capture_files,
    capture_lines,
    capture_records,
    from_capture,
)

# a sqlcommenter comment naming the route (% doubled for psycopg's placeholders)
ROUTE_COMMENT = "/*route='%%2Forders%%2F%%7Bid%%7D'*/"


def _records(path: Path) -> list[dict[str, Any]]:
    return list(capture_records(path))


def test_a_real_capture_adds_up_per_fingerprint(pg_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "workload.jsonl"
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="transaction", capture=path,
        capture_params=True,
    ))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind text)")
            conn.execute("INSERT INTO items SELECT g, 'k' || g % 3 FROM generate_series(1, 100) g")
            for i in range(1, 31):
                conn.execute(f"SELECT * FROM items WHERE id = %s {ROUTE_COMMENT}", (i,))
            for i in range(5):
                conn.execute(f"SELECT kind FROM items WHERE id = {i} AND kind = 'k1'")
            with conn.transaction():
                conn.execute("UPDATE items SET kind = %s WHERE id = %s", ("k9", 3))
            for _ in range(2):
                with pytest.raises(psycopg.errors.DivisionByZero):
                    conn.execute("SELECT id / 0 FROM items WHERE id = 1")
    finally:
        proxy.close()

    workload = from_capture(path)
    records = [r for r in _records(path) if r["type"] == "statement"]
    by_fp: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_fp.setdefault(record["fingerprint"], []).append(record)

    (lookup,) = [s for s in workload if s.normalized.startswith("SELECT * FROM items WHERE id")]
    mine = by_fp[lookup.fingerprint]
    durations = [r["duration_s"] for r in mine]
    assert lookup.calls == 30 == len(mine)
    assert lookup.total_time_s == pytest.approx(sum(durations))
    assert lookup.p95_s == pytest.approx(statistics.quantiles(durations, n=20, method="inclusive")[-1])
    assert lookup.rows == 30 and lookup.errors == 0
    assert lookup.routes == {"/orders/{id}": 30}
    assert lookup.tables == ("items",) and lookup.operation == "select"
    assert lookup.sources == ("capture",) and lookup.instrumented

    (failing,) = [s for s in workload if "/ $1" in s.normalized or "/ 0" in s.normalized]
    assert failing.calls == 2 and failing.errors == 2 and failing.rows is None
    (literal,) = [s for s in workload if "kind = $2" in s.normalized]
    assert literal.calls == 5
    (update,) = [s for s in workload if s.operation == "update"]
    assert update.writes and workload.writes_per_minute("items") > 0

    # BEGIN and COMMIT are left out, and counted
    assert not any(s.operation == "tx" for s in workload)
    assert workload.skipped.get("utility", 0) >= 2
    ats = [r["at"] for r in records]
    assert workload.window_s == pytest.approx(max(ats) - min(ats))

    # samples are the records' own text and parameters, when the capture writes them
    for statement in workload:
        captured = {
            Sample(r["sql"], tuple(r["params"]) if r.get("params") is not None else None)
            for r in by_fp[statement.fingerprint]
            # values the capture could not decode ({"hex": ...}) make no sample
            if r.get("sql") and not any(isinstance(v, dict) for v in r.get("params") or ())
        }
        assert set(statement.samples) <= captured
        assert bool(statement.samples) == bool(captured)
        assert len(statement.samples) <= MAX_SAMPLES


def test_rotated_files_are_read_oldest_first(pg_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "rotating.jsonl"
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="session", capture=path,
        capture_max_bytes=4096, capture_backups=50,
    ))
    runs = 150
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            for i in range(runs):
                conn.execute(f"SELECT {i} AS n, 'padding padding padding padding padding'")
                if i % 20 == 0:
                    proxy.call(_flush(proxy))  # written as it goes, so that files rotate
    finally:
        proxy.close()

    files = capture_files(path)
    assert len(files) >= 3 and files[-1] == path
    assert files[0].name == f"rotating.jsonl.{len(files) - 1}"  # the oldest backup first
    ats = [r["at"] for r in capture_records(path) if r["type"] == "statement"]
    assert ats == sorted(ats)  # in the order they ran
    (statement,) = [s for s in from_capture(path) if s.operation == "select"]
    assert statement.calls == runs
    only_current = from_capture(path, rotated=False)
    (newest,) = [s for s in only_current if s.operation == "select"]
    assert 0 < newest.calls < runs


async def _flush(proxy: RunningProxy) -> None:
    proxy.server.capture.flush()  # on the proxy's loop: the capture is not thread-safe


def _line(**fields: Any) -> str:
    record = {
        "type": "statement", "session": 1, "at": 1000.0, "duration_s": 0.001,
        "normalized": "SELECT * FROM orders WHERE status = $1",
        "fingerprint": "f00d", "rows": 1, "sqlstate": None, "in_transaction": False,
    }
    record.update(fields)
    return json.dumps(record) + "\n"


def test_samples_follow_the_traffic(tmp_path: Path) -> None:
    path = tmp_path / "params.jsonl"
    sql = "SELECT * FROM orders WHERE status = $1"
    lines = []
    for i in range(2000):  # 'open' is 90 % of the calls
        status = "done" if i % 10 == 0 else "open"
        lines.append(_line(at=1000.0 + i, sql=sql, params=[status]))
    lines.append(_line(at=3000.0, sql=sql, params=[{"hex": "00ff"}]))
    lines.append(_line(at=3001.0, normalized="SELECT $1", fingerprint="beef", sql="SELECT 42"))
    lines.append(_line(at=3002.0, normalized="SELECT $1", fingerprint="beef"))  # no sql
    path.write_text("".join(lines))

    workload = from_capture(path)
    status = workload.statements["f00d"]
    assert status.calls == 2001
    assert len(status.samples) == MAX_SAMPLES
    opened = sum(1 for s in status.samples if s.params == ("open",))
    assert opened >= MAX_SAMPLES * 0.6  # reservoir: the dominant value dominates
    assert {s.params for s in status.samples} <= {("open",), ("done",)}
    assert workload.skipped["undecodable_params"] == 1
    assert workload.statements["beef"].samples == [Sample("SELECT 42")]
    assert workload.window_s == pytest.approx(2002.0)
    # the same file gives the same samples
    assert from_capture(path).statements["f00d"].samples == status.samples


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(
        _line(at=1.0) + "not json at all\n" + '["a list"]\n' + _line(at=2.0)
        + _line(duration_s="slow") + _line(at=3.0)[:40]  # the last line cut short
    )
    workload = from_capture(path)
    assert workload.statements["f00d"].calls == 2
    assert workload.skipped["corrupt_lines"] == 4


def test_unreadable_captures_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read capture .*missing.jsonl"):
        from_capture(tmp_path / "missing.jsonl")
    with pytest.raises(WorkloadError, match="is a directory"):
        from_capture(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("these are\nnot capture records\n")
    with pytest.raises(WorkloadError, match="is not a dbsight capture"):
        from_capture(other)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert len(from_capture(empty)) == 0 and from_capture(empty).window_s is None


def test_capture_lines_say_where_each_line_stands_and_which_is_last(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    record = json.dumps({"type": "session_start", "session": 1, "at": 1.0})
    path.with_name("capture.jsonl.1").write_text(f"{record}\n[1, 2]\n")
    path.write_text(f"{record}\n\n{record}\n{record[:12]}")  # the last line cut short
    lines = list(capture_lines(path))
    assert [(line.file.name, line.number, line.last) for line in lines] == [
        ("capture.jsonl.1", 1, False), ("capture.jsonl.1", 2, True),
        ("capture.jsonl", 1, False), ("capture.jsonl", 3, False), ("capture.jsonl", 4, True),
    ]  # fmt: skip
    assert [line.problem for line in lines] == [
        None, "not a capture record (no type)", None, None, "not JSON"
    ]
    assert lines[0].record == json.loads(record)
    corrupt: list[int] = []
    assert len(list(capture_records(path, corrupt=corrupt))) == 3 and corrupt == [2]
