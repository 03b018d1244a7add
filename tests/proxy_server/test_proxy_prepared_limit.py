"""`max_prepared_statements` through `dbsight proxy` in transaction mode, against a real
PostgreSQL: the one server connection of the pool keeps no more prepared statements than
that once maintained, and the client whose statements were dropped runs them all again."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg
from prometheus_client import generate_latest

# (the pooled tests' helpers: /stats/pools, a metric's value, the server's statements)
from test_proxy_pooled import metric, pool_stats, server_statements
from test_proxy_session import settle

from dbsight._runtime import get_runtime


async def test_a_connection_over_the_limit_drops_its_oldest_and_the_client_goes_on(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(
        pg_dsn, pool_mode="transaction", pool_size=1, max_prepared_statements=3
    )
    dsn = str(proxy.dsn(pg_dsn))
    texts = [f"SELECT $1::int + {k}" for k in range(6)]
    conn = await asyncpg.connect(dsn)
    try:
        for k, text in enumerate(texts):  # six statements, each prepared on the connection
            assert await conn.fetchval(text, 1) == 1 + k
        settle(lambda: pool_stats(proxy)["total_deallocated"] >= 3)  # (maintenance: every 1 s)
        assert server_statements(dsn) == 3
        for k, text in enumerate(texts):  # the client's names still work: prepared anew
            assert await conn.fetchval(text, 2) == 2 + k
    finally:
        await conn.close()
    stats = pool_stats(proxy)
    assert stats["total_closed"] == 0, "trimmed, not replaced"
    pool = f"{urlsplit(pg_dsn).username or 'postgres'}@{urlsplit(pg_dsn).path[1:]}"
    after = generate_latest(get_runtime().registry).decode()
    assert metric(after, "proxy_server_deallocated_statements_total", pool=pool) >= 3
