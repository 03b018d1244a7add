"""The issue's acceptance path: a schema and a workload captured through `dbsight proxy
--capture`, then `dbsight advise --json` on it — missing indexes (one of them a join's),
an index that already serves its statement, and a table written far more than read."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from dbsight.cli import app
from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE shoppers (id int PRIMARY KEY, email text NOT NULL, country text NOT NULL);
CREATE TABLE purchases (
    id int PRIMARY KEY, shopper_id int NOT NULL, state text NOT NULL, amount numeric NOT NULL
);
CREATE TABLE articles (id int PRIMARY KEY, sku text NOT NULL, title text NOT NULL);
CREATE INDEX articles_sku ON articles (sku);
CREATE TABLE clicks (id bigserial PRIMARY KEY, kind text NOT NULL, target int NOT NULL);
INSERT INTO shoppers SELECT g, 'shopper' || g || '@example.com', (ARRAY['de','fr','us'])[1 + g % 3]
    FROM generate_series(1, 20000) g;
INSERT INTO purchases SELECT g, 1 + (g * 7919) % 20000, (ARRAY['paid','open','void'])[1 + g % 3], g % 500
    FROM generate_series(1, 60000) g;
INSERT INTO articles SELECT g, 'SKU-' || g, 'article ' || g FROM generate_series(1, 20000) g;
INSERT INTO clicks (kind, target) SELECT (ARRAY['view','buy'])[1 + g % 2], g % 1000
    FROM generate_series(1, 20000) g;
ANALYZE;
"""


def _traffic(dsn: str) -> None:
    rng = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(60):
            conn.execute("SELECT id, amount FROM purchases WHERE shopper_id = %s", (rng.randint(1, 20000),))
        for _ in range(40):
            conn.execute(
                "SELECT s.country, p.amount FROM shoppers s JOIN purchases p ON p.shopper_id = s.id"
                " WHERE s.email = %s",
                (f"shopper{rng.randint(1, 20000)}@example.com",),
            )
        for _ in range(60):
            conn.execute("SELECT id, title FROM articles WHERE sku = %s", (f"SKU-{rng.randint(1, 20000)}",))
        # clicks: written thousands of times for each read
        with conn.cursor() as cur:
            for _ in range(3):
                cur.executemany(
                    "INSERT INTO clicks (kind, target) VALUES (%s, %s)",
                    [("view", rng.randint(1, 1000)) for _ in range(1000)],
                )
        conn.execute("SELECT count(*) FROM clicks WHERE target = %s", (5,))


@pytest.fixture
def captured(pg_dsn: str, tmp_path: Path) -> Path:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    path = tmp_path / "workload.jsonl"
    proxy = RunningProxy(
        ProxyConfig(listen="127.0.0.1:0", upstream=pg_dsn, capture=path, capture_params=True)
    )
    try:
        _traffic(proxy.dsn(pg_dsn))
    finally:
        proxy.close()  # flushes the capture
    return path


def _advise(pg_dsn: str, workload: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["advise", "--dsn", pg_dsn, "--workload", str(workload), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _on(advice: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [index for index in advice["indexes"] if index["table"].split(".")[-1] == table]


def test_captured_workload_gets_the_indexes_it_needs_and_no_others(
    pg_dsn: str, captured: Path
) -> None:
    advice = _advise(pg_dsn, captured)
    purchases = _on(advice, "purchases")
    assert [index["columns"][0] for index in purchases] == ["shopper_id"]
    # the join: an index on each side, the email lookup and the purchases of that shopper
    shoppers = _on(advice, "shoppers")
    assert [index["columns"][0] for index in shoppers] == ["email"]
    join = [
        s for index in advice["indexes"] for s in index["statements"] if "JOIN" in s["normalized"]
    ]
    assert join and all(s["cost_after"] < s["cost_before"] / 2 for s in join)
    # articles.sku is already indexed: nothing for it
    assert _on(advice, "articles") == []
    # clicks is written far more than read: rejected, and the advice says why
    assert _on(advice, "clicks") == []
    rejected = [r for r in advice["rejected"] if r["table"].split(".")[-1] == "clicks"]
    assert rejected and "write" in rejected[0]["reason"]
    for index in advice["indexes"]:
        assert index["create"].startswith("CREATE INDEX CONCURRENTLY")
    # privacy: normalized statements only, no literal of the traffic
    text = json.dumps(advice)
    assert "@example.com" not in text and "SKU-" not in text
    # nothing was created: advice alone never changes the database
    with psycopg.connect(pg_dsn) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert names == {"shoppers_pkey", "purchases_pkey", "articles_pkey", "articles_sku", "clicks_pkey"}


def test_verify_measures_each_index_on_the_real_database_and_drops_it(
    pg_dsn: str, captured: Path
) -> None:
    advice = _advise(pg_dsn, captured, "--verify")
    served = [s for index in advice["indexes"] for s in index["statements"]]
    assert served
    for statement in served:
        assert statement["measured_after_ms"] < statement["measured_before_ms"]
    with psycopg.connect(pg_dsn) as conn:
        count = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
        ).fetchone()
    assert count == (5,)  # dropped again without --keep
