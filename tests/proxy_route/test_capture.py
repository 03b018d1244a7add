"""Workload capture: JSON lines, buffering, rotation by size, write errors kept from the relay."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from dbsight.proxy._capture import BUFFER_BYTES, WorkloadCapture


def statement(capture: WorkloadCapture, n: int, *, params: list[object] | None = None) -> None:
    capture.statement(
        1,
        started_at=1_700_000_000.0 + n,
        duration_s=0.002,
        normalized=f"SELECT * FROM orders WHERE id = $1 /* {n} */",
        fingerprint="0123456789abcdef",
        params=params,
        rows=1,
        sqlstate=None,
        in_transaction=False,
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_record_is_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "workload.jsonl"
    capture = WorkloadCapture(path)
    capture.session_started(
        7, user="app", database="appdb", application_name="web", client_addr=None, at=10.0
    )
    capture.transaction(7, "begin", 11.0)
    capture.statement(
        7,
        started_at=11.5,
        duration_s=0.25,
        normalized="UPDATE orders SET paid = $1 WHERE id = $2",
        fingerprint="0123456789abcdef",
        params=["true", 42],
        rows=1,
        sqlstate=None,
        in_transaction=True,
    )
    capture.transaction(7, "rollback", 12.0)
    capture.statement(
        7,
        started_at=12.5,
        duration_s=0.001,
        normalized="SELECT nope",
        fingerprint="fedcba9876543210",
        params=None,
        rows=None,
        sqlstate="42703",
        in_transaction=False,
    )
    capture.session_ended(7, 13.0)
    capture.close()
    # no "params": they are left out unless include_params
    assert records(path) == [
        {"type": "session_start", "session": 7, "at": 10.0, "user": "app", "database": "appdb",
         "application_name": "web", "client_addr": None},
        {"type": "transaction", "session": 7, "event": "begin", "at": 11.0},
        {"type": "statement", "session": 7, "at": 11.5, "duration_s": 0.25,
         "normalized": "UPDATE orders SET paid = $1 WHERE id = $2",
         "fingerprint": "0123456789abcdef", "rows": 1, "sqlstate": None, "in_transaction": True},
        {"type": "transaction", "session": 7, "event": "rollback", "at": 12.0},
        {"type": "statement", "session": 7, "at": 12.5, "duration_s": 0.001,
         "normalized": "SELECT nope", "fingerprint": "fedcba9876543210", "rows": None,
         "sqlstate": "42703", "in_transaction": False},
        {"type": "session_end", "session": 7, "at": 13.0},
    ]  # fmt: skip


def test_params_only_when_enabled(tmp_path: Path) -> None:
    path = tmp_path / "with-params.jsonl"
    capture = WorkloadCapture(path, include_params=True)
    statement(capture, 1, params=[b"caf\xc3\xa9", b"\xff\x00", None, 3, 2.5, "x", Path("/p")])
    statement(capture, 2, params=None)
    capture.close()
    first, second = records(path)
    assert first["params"] == ["café", {"hex": "ff00"}, None, 3, 2.5, "x", "/p"]
    assert "params" not in second


def test_records_are_buffered_until_the_buffer_fills(tmp_path: Path) -> None:
    path = tmp_path / "buffered.jsonl"
    capture = WorkloadCapture(path)
    statement(capture, 0)
    assert not path.exists()  # an append, no write
    n = 1
    while not path.exists():
        statement(capture, n)
        n += 1
    written = path.stat().st_size
    assert BUFFER_BYTES <= written < BUFFER_BYTES + 200
    assert len(records(path)) == n
    capture.close()


def test_close_flushes_and_a_later_record_reopens(tmp_path: Path) -> None:
    path = tmp_path / "closed.jsonl"
    capture = WorkloadCapture(path)
    statement(capture, 1)
    capture.close()
    assert len(records(path)) == 1
    capture.close()
    statement(capture, 2)
    capture.flush()
    assert [r["at"] for r in records(path)] == [1_700_000_001.0, 1_700_000_002.0]
    capture.close()


def test_an_existing_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "existing.jsonl"
    path.write_text('{"type":"session_end","session":1,"at":1.0}\n')
    capture = WorkloadCapture(path)
    statement(capture, 1)
    capture.close()
    assert [r["type"] for r in records(path)] == ["session_end", "statement"]


@pytest.mark.parametrize("flush_every", [1, 7, 10_000])
def test_rotation_keeps_backups_within_max_bytes(tmp_path: Path, flush_every: int) -> None:
    path = tmp_path / "rotating.jsonl"
    capture = WorkloadCapture(path, max_bytes=2000, backups=3)
    for n in range(400):
        statement(capture, n)
        if n % flush_every == 0:
            capture.flush()
    capture.close()
    files = [path.with_name(f"{path.name}.{i}") for i in (3, 2, 1)] + [path]
    assert all(f.exists() for f in files)
    assert not path.with_name(f"{path.name}.4").exists()
    assert all(1500 < f.stat().st_size <= 2000 for f in files[:-1])
    assert path.stat().st_size <= 2000
    kept = [r["at"] - 1_700_000_000.0 for f in files for r in records(f)]
    assert kept == list(range(400 - len(kept), 400))  # the newest, in order, none lost between


def test_without_backups_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "single.jsonl"
    capture = WorkloadCapture(path, max_bytes=1000, backups=0)
    for n in range(100):
        statement(capture, n)
    capture.close()
    assert path.stat().st_size <= 1000
    assert records(path)[-1]["at"] == 1_700_000_099.0
    assert list(tmp_path.iterdir()) == [path]


def test_a_line_longer_than_max_bytes_still_gets_written(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    capture = WorkloadCapture(path, max_bytes=100, backups=1)
    statement(capture, 1)
    statement(capture, 2)
    capture.close()
    assert [r["at"] for r in records(path)] == [1_700_000_002.0]
    assert [r["at"] for r in records(path.with_name("long.jsonl.1"))] == [1_700_000_001.0]


@pytest.mark.parametrize(
    "where",
    [
        "missing-directory",
        pytest.param(
            "disk-full",
            marks=pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full"),
        ),
    ],
)
def test_write_errors_are_logged_once_and_counted(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = (
        tmp_path / "gone" / "workload.jsonl" if where == "missing-directory" else Path("/dev/full")
    )
    capture = WorkloadCapture(path)
    with caplog.at_level(logging.ERROR, logger="dbsight.proxy.capture"):
        statement(capture, 1)
        statement(capture, 2)
        capture.flush()
        statement(capture, 3)
        capture.close()
    assert (capture.write_errors, capture.records_dropped) == (2, 3)
    (logged,) = caplog.records
    assert "cannot write" in logged.getMessage()
    assert str(path) in logged.getMessage()
    if where == "missing-directory":  # writing works again once the directory is back
        path.parent.mkdir()
        statement(capture, 4)
        capture.close()
        assert [r["at"] for r in records(path)] == [1_700_000_004.0]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_bytes": 0}, "max_bytes must be at least 1"), ({"backups": -1}, "backups cannot")],
)
def test_bad_settings(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkloadCapture(tmp_path / "x.jsonl", **options)
