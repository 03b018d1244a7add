"""LISTEN through transaction pooling: a transaction's notifications reach the client
together, as a server sends them (psycopg's tests/test_notify.py::test_stop_after_batch:
``conn.notifies(stop_after=1)`` returns the whole batch it got in one read)."""

from __future__ import annotations

import threading
from typing import Any

import psycopg


def test_notifications_of_one_transaction_arrive_together(
    proxy_factory: Any, pg_dsn: str
) -> None:
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=2)
    dsn = str(proxy.dsn(pg_dsn))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN batch")

        def notifier() -> None:
            with psycopg.connect(dsn, autocommit=True) as other, other.transaction():
                for k in range(5):
                    other.execute(f"NOTIFY batch, '{k}'")

        for _ in range(5):  # (each round: one batch, read once)
            worker = threading.Thread(target=notifier)
            worker.start()
            try:
                got = list(conn.notifies(timeout=5.0, stop_after=1))
            finally:
                worker.join()
            assert [n.payload for n in got] == ["0", "1", "2", "3", "4"]
