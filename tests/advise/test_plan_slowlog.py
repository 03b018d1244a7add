"""The plan analyzer behind the slow-query log: each instrument's background explainer
(EXPLAIN, or EXPLAIN ANALYZE when ``explain_analyze`` is on), the findings on the slow-log
line, in the statistics table's plan summary and as advice events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy

import dbsight
from dbsight.advise import AdviceEvent
from dbsight.core import Settings

SECRET = 4242  # a constant of the statement: it must not leave the process
BIG_SCAN = f"SELECT * FROM big WHERE val = {SECRET}"


def configure(fresh_runtime: Any, tmp_path: Path, **settings: Any) -> Any:
    return dbsight.configure(
        Settings(
            slow_query_threshold_ms=1.0,
            slow_query_log=tmp_path / "slow.jsonl",
            explain_timeout_ms=5_000,
            **settings,
        )
    )


def slow_lines(runtime: Any, tmp_path: Path) -> list[dict[str, Any]]:
    runtime.flush(10.0, "the test ended before the plan arrived")
    text = (tmp_path / "slow.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def planned(lines: list[dict[str, Any]], needle: str) -> dict[str, Any]:
    [line] = [line for line in lines if needle in line["normalized"] and "plan" in line]
    return line


def run_sync(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn) as conn:
        handle = dbsight.instrument(conn)
        try:
            conn.execute(sql).fetchall()
        finally:
            conn.rollback()
            handle.uninstrument()


def test_explain_analyze_findings_on_the_line_the_summary_and_events(
    plan_db: str, fresh_runtime: Any, tmp_path: Path, advice_events: list[AdviceEvent]
) -> None:
    runtime = configure(fresh_runtime, tmp_path, explain_analyze=True)
    run_sync(plan_db, BIG_SCAN)
    line = planned(slow_lines(runtime, tmp_path), "FROM big")
    assert line["plan_summary"]["analyzed"] is True
    assert "Actual Loops" in line["plan"][0]["Plan"]
    first = line["findings"][0]
    assert first["kind"] == "seq_scan" and first["severity"] == "critical"
    assert first["message"] == "Seq Scan on big removes 99.9 % of 100,000 rows"
    assert line["plan_summary"]["findings"] == line["findings"]
    # /metrics/summary: the recent slow records and the top entries' plan summary
    from dbsight.web._reports import summary

    document = json.loads(json.dumps(summary(runtime, limit=10)))
    [top] = [row for row in document["top"] if row["fingerprint"] == line["fingerprint"]]
    assert top["plan_summary"]["findings"][0]["message"] == first["message"]
    [slow] = [row for row in document["slow"] if row["fingerprint"] == line["fingerprint"]]
    assert slow["findings"] == line["findings"]
    # each finding once, as a plan event keyed by kind, relation and statement
    keys = {event.key for event in advice_events}
    assert f"plan:seq_scan:big:{line['fingerprint']}" in keys
    assert all(event.kind == "plan" for event in advice_events)
    assert str(SECRET) not in json.dumps(line)
    assert str(SECRET) not in json.dumps([event.to_dict() for event in advice_events])


def test_a_plain_explain_looks_the_table_size_up(
    plan_db: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    runtime = configure(fresh_runtime, tmp_path)  # explain_analyze is off by default
    run_sync(plan_db, BIG_SCAN)
    line = planned(slow_lines(runtime, tmp_path), "FROM big")
    assert line["plan_summary"]["analyzed"] is False
    [finding] = [f for f in line["findings"] if f["kind"] == "seq_scan"]
    assert finding["message"] == (
        "Seq Scan on big would remove an estimated 99.9 % of 100,000 rows"
    )


@pytest.mark.parametrize(
    ("sql", "settings"),
    [
        (BIG_SCAN + " FOR UPDATE", {"explain_analyze": True}),  # not read-only
        (BIG_SCAN, {"explain_analyze": True, "explain_analyze_sample_rate": 0.0}),
    ],
    ids=["locking-select", "not-sampled"],
)
def test_no_analyze_for_what_is_not_a_sampled_read_only_select(
    plan_db: str, fresh_runtime: Any, tmp_path: Path, sql: str, settings: dict[str, Any]
) -> None:
    runtime = configure(fresh_runtime, tmp_path, **settings)
    run_sync(plan_db, sql)
    line = planned(slow_lines(runtime, tmp_path), "FROM big")
    assert line["plan_summary"]["analyzed"] is False
    assert "Actual Loops" not in json.dumps(line["plan"])


def test_an_analyze_over_the_time_out_falls_back_to_a_plain_explain(
    plan_db: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    runtime = dbsight.configure(
        Settings(
            slow_query_threshold_ms=1.0,
            slow_query_log=tmp_path / "slow.jsonl",
            explain_timeout_ms=200,
            explain_analyze=True,
        )
    )
    # 4 million pairs: about half a second here, over the 200 ms
    run_sync(plan_db, "SELECT count(*) FROM small a CROSS JOIN small b WHERE a.id * b.id % 7 = 3")
    line = planned(slow_lines(runtime, tmp_path), "FROM small")
    assert line["plan_summary"]["analyzed"] is False
    assert line["plan_summary"]["node_type"] == "Aggregate"
    assert "statement timeout" in line["plan_analyze_error"]


def test_stale_statistics_end_to_end(plan_db: str, fresh_runtime: Any, tmp_path: Path) -> None:
    runtime = configure(fresh_runtime, tmp_path, explain_analyze=True)
    run_sync(plan_db, "SELECT * FROM stale WHERE kind = 1")
    line = planned(slow_lines(runtime, tmp_path), "FROM stale")
    kinds = [finding["kind"] for finding in line["findings"]]
    assert kinds[:2] == ["misestimate", "stale_statistics"]
    assert line["findings"][1]["suggestion"] == "ANALYZE stale"


def test_asyncpg_explains_with_analyze(plan_db: str, fresh_runtime: Any, tmp_path: Path) -> None:
    runtime = configure(fresh_runtime, tmp_path, explain_analyze=True)

    async def main() -> None:
        conn = await asyncpg.connect(plan_db)
        handle = dbsight.instrument(conn)
        try:
            await conn.fetch("SELECT * FROM big WHERE val = $1", SECRET)
            await conn.fetch("SELECT * FROM stale WHERE kind = $1", 1)  # looks statistics up
            from dbsight.instrument._explain import pending_explains

            await pending_explains()
        finally:
            handle.uninstrument()
            await conn.close()

    asyncio.run(main())
    lines = slow_lines(runtime, tmp_path)
    line = planned(lines, "FROM big")
    assert line["plan_summary"]["analyzed"] is True
    assert line["findings"][0]["message"] == "Seq Scan on big removes 99.9 % of 100,000 rows"
    stale = planned(lines, "FROM stale")
    assert "stale_statistics" in [finding["kind"] for finding in stale["findings"]]


def test_async_psycopg_explains_with_analyze(
    plan_db: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    runtime = configure(fresh_runtime, tmp_path, explain_analyze=True)

    async def main() -> None:
        from dbsight.instrument._explain import pending_explains

        async with await psycopg.AsyncConnection.connect(plan_db) as conn:
            handle = dbsight.instrument(conn)
            try:
                await (await conn.execute("SELECT * FROM big WHERE val = %s", (SECRET,))).fetchall()
                await conn.rollback()
                await pending_explains()
            finally:
                handle.uninstrument()

    asyncio.run(main())
    line = planned(slow_lines(runtime, tmp_path), "FROM big")
    assert line["plan_summary"]["analyzed"] is True
    assert line["findings"][0]["message"] == "Seq Scan on big removes 99.9 % of 100,000 rows"


def test_sqlalchemy_explains_with_analyze(
    plan_db: str, fresh_runtime: Any, tmp_path: Path
) -> None:
    runtime = configure(fresh_runtime, tmp_path, explain_analyze=True)
    engine = sqlalchemy.create_engine(plan_db.replace("postgresql://", "postgresql+psycopg://"))
    handle = dbsight.instrument(engine)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT * FROM big WHERE val = :v"), {"v": SECRET}).all()
            conn.execute(sqlalchemy.text("SELECT * FROM stale WHERE kind = :k"), {"k": 1}).all()
    finally:
        handle.uninstrument()
        engine.dispose()
    lines = slow_lines(runtime, tmp_path)
    line = planned(lines, "FROM big")
    assert line["plan_summary"]["analyzed"] is True
    assert line["findings"][0]["kind"] == "seq_scan"
    stale = planned(lines, "FROM stale")
    assert "stale_statistics" in [finding["kind"] for finding in stale["findings"]]
