"""Through the proxy, a statement the server fails is counted in ``db_client_errors_total`` by
the SQLSTATE of the server's ErrorResponse (the client gets that ErrorResponse unchanged),
apart from ``proxy_client_errors_total``, which counts only what the proxy answers itself."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import dbsight
from dbsight._runtime import get_runtime


def sample(name: str, **labels: str) -> float:
    text = generate_latest(get_runtime().registry).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def errors(operation: str, sqlstate: str) -> float:
    return sample("db_client_errors_total", system="postgresql", operation=operation,
                  table="accounts", sqlstate=sqlstate, error_class=sqlstate[:2])  # fmt: skip


def settle(condition: Any, timeout_s: float = 10.0) -> None:
    """The proxy forwards the server's answer before it records the statement."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the proxy never recorded the statement"
        time.sleep(0.01)


@pytest.fixture
def configured(fresh_runtime: Any) -> None:
    dbsight.configure(dbsight.Settings(tracing_enabled=False, explain_slow_queries=False))


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_server_errors_through_the_proxy_are_counted_by_sqlstate(
    proxy_factory: Any, pg_dsn: str, configured: None, mode: str
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
        conn.execute("INSERT INTO accounts VALUES (1, 100), (2, 100)")
    proxy = proxy_factory(pg_dsn, pool_mode=mode, pool_size=4)
    dsn = proxy.dsn(pg_dsn)
    proxy_errors_before = sample("proxy_client_errors_total", sqlstate="23505")

    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO accounts VALUES (1, 0)")
    settle(lambda: errors("insert", "23505") == 1)

    # a real deadlock between two clients of the proxy
    raised: list[BaseException] = []
    both_locked = threading.Barrier(2, timeout=10)

    def transfer(mine: int, other: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            try:
                conn.execute("SET deadlock_timeout = '50ms'")
                with conn.transaction():
                    conn.execute("UPDATE accounts SET balance = balance - 1 WHERE id = %s",
                                 (mine,))  # fmt: skip
                    both_locked.wait()
                    conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s",
                                 (other,))  # fmt: skip
            except psycopg.Error as exc:
                raised.append(exc)

    threads = [threading.Thread(target=transfer, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [type(exc) for exc in raised] == [psycopg.errors.DeadlockDetected]
    settle(lambda: errors("update", "40P01") == 1)
    # the server's errors are not the proxy's own answers
    assert sample("proxy_client_errors_total", sqlstate="23505") == proxy_errors_before
