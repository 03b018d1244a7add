"""Slow-query lines are written when the process exits right after the statement, even while
their EXPLAIN plan is still on its way, and exit does not wait long for a database that does
not answer: a real program (instrumented psycopg on real PostgreSQL) run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from slow_exit_app import Blackhole

import dbsight
from dbsight.export.slowlog import EXITING, FLUSH_TIMEOUT_S
from dbsight.instrument._handle import UNINSTRUMENTED

APP = Path(__file__).with_name("slow_exit_app.py")


def run_app(*args: str) -> subprocess.CompletedProcess[str]:
    # The EXPLAIN of a dead database would take 30 s (explain_timeout_ms): well under that,
    # the program has exited.
    result = subprocess.run(
        [sys.executable, str(APP), *args], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    return result


def slow_lines(text: str) -> list[dict[str, Any]]:
    return [
        line
        for line in (json.loads(raw) for raw in text.splitlines() if raw.startswith("{"))
        if "pg_sleep" in line.get("normalized", "")
    ]


def test_the_line_of_a_statement_just_before_exit_is_written(pg_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "slow.jsonl"
    run_app(pg_dsn, "--log", str(log))
    [line] = slow_lines(log.read_text())
    assert line["normalized"] == "SELECT pg_sleep($1) AS slow_exit"
    assert line["duration_ms"] >= 100
    # the plan arrived in the moment exit waits for it, or the line says why not
    assert "plan_summary" in line or line["plan_error"] == EXITING


def test_without_a_file_the_line_reaches_stderr(pg_dsn: str) -> None:
    result = run_app(pg_dsn)
    [line] = slow_lines(result.stderr)
    assert line["threshold_ms"] == 100


def test_exit_waits_only_a_moment_for_a_database_that_does_not_answer(
    pg_dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "slow.jsonl"
    run_app(pg_dsn, "--log", str(log), "--dead-explain")
    [line] = slow_lines(log.read_text())
    assert line["plan_error"] == EXITING and "plan" not in line


def test_uninstrument_writes_the_pending_lines(pg_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "slow.jsonl"
    result = subprocess.Popen(
        [sys.executable, str(APP), pg_dsn, "--log", str(log), "--dead-explain",
         "--uninstrument"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert result.stdout is not None
        assert result.stdout.readline().strip() == "uninstrumented"
        # written by uninstrument(), before exit
        [line] = slow_lines(log.read_text())
        assert line["plan_error"] == UNINSTRUMENTED
    finally:
        result.communicate(timeout=20)


def test_uninstrument_on_an_event_loop_does_not_block_it(
    pg_dsn: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    """In an event loop (an ASGI app's shutdown) the plans would need the loop: the lines
    are written at once, without waiting."""
    import asyncio

    log = tmp_path / "slow.jsonl"
    parts = urlsplit(pg_dsn)
    hole = Blackhole(parts.hostname or "127.0.0.1", parts.port or 5432)
    dbsight.configure(
        dbsight.Settings(slow_query_threshold_ms=100, slow_query_log=str(log),
                         explain_timeout_ms=30_000)
    )

    async def main() -> float:
        conn = await psycopg.AsyncConnection.connect(hole.dsn(pg_dsn), autocommit=True)
        try:
            handle = dbsight.instrument(conn)
            await conn.execute("SELECT pg_sleep(0.2) AS slow_exit")
            loop = asyncio.get_running_loop()
            started = loop.time()
            handle.uninstrument()
            return loop.time() - started
        finally:
            await conn.close()

    try:
        blocked_s = asyncio.run(main())
    finally:
        hole.close()
    [line] = slow_lines(log.read_text())
    assert line["plan_error"] == UNINSTRUMENTED
    assert blocked_s < FLUSH_TIMEOUT_S  # it did not wait for the plans
