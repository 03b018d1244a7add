"""The proxy runs the same notifier (its runtime is dbsight's, from the same settings): a slow
statement that goes through it alerts, with the normalized statement only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from notify_helpers import posted, wait_for

import dbsight


@pytest.fixture
def configured(fresh_runtime: Any, httpserver: Any) -> Iterator[Any]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    dbsight.configure(
        dbsight.Settings(
            service_name="proxy",
            alert_webhook_url=httpserver.url_for("/hook"),
            alert_slow_query_ms=200,
            alert_group_wait_s=0,
            alert_group_interval_s=0.2,
            explain_slow_queries=False,
            tracing_enabled=False,
        )
    )
    yield httpserver


def test_a_slow_statement_through_the_proxy_alerts(pg_dsn: str, configured: Any) -> None:
    from dbsight.proxy._config import ProxyConfig
    from dbsight.testing.proxy import RunningProxy

    proxy = RunningProxy(ProxyConfig(listen="127.0.0.1:0", upstream=pg_dsn))
    try:
        with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(0.3), 'hush-literal'")
        (body,) = wait_for(lambda: posted(configured, "/hook"), 10, "the proxy's alert")
    finally:
        proxy.close()
    (alert,) = body["alerts"]
    assert alert["labels"]["alertname"] == "DbsightSlowQuery"
    assert alert["labels"]["service"] == "proxy"
    assert "pg_sleep" in alert["annotations"]["statement"]
    assert "hush-literal" not in str(body)


async def test_a_replica_leaving_rotation_alerts_and_its_return_resolves(
    pg_replicated: Any, configured: Any
) -> None:
    import asyncio

    from dbsight.proxy._backend import BackendSpec
    from dbsight.proxy._config import Upstream
    from dbsight.proxy._health import BackendTarget, HealthBoard

    def target(name: str, role: Any, dsn: str) -> BackendTarget:
        url = Upstream.from_url(dsn)
        spec = BackendSpec(
            host=url.host, port=url.port, user=url.user or "postgres",
            database=url.database or "postgres",
        )  # fmt: skip
        return BackendTarget(name, role, spec)

    def run(dsn: str, sql: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def alerts(status: str) -> list[dict[str, Any]]:
        return [
            alert for body in posted(configured, "/hook") for alert in body["alerts"]
            if alert["labels"]["alertname"] == "DbsightReplicaOutOfRotation"
            and alert["status"] == status
        ]  # fmt: skip

    primary_dsn, replica_dsn = pg_replicated.dsn(), pg_replicated.replica_dsn(0)
    board = HealthBoard(
        target("primary", "primary", primary_dsn),
        [target("replica1", "replica", replica_dsn)],
        max_lag_bytes=1,
    )
    replica = board.replicas[0]
    try:
        run(primary_dsn, "SELECT txid_current()")
        await asyncio.to_thread(pg_replicated.wait_for_replay)
        await board.check_all()
        run(replica_dsn, "SELECT pg_wal_replay_pause()")
        try:
            run(primary_dsn, "SELECT txid_current()")
            for _ in range(200):
                await board.check_all()
                if not replica.in_rotation:
                    break
                await asyncio.sleep(0.02)
            (alert,) = await asyncio.to_thread(
                wait_for, lambda: alerts("firing"), 10, "the out-of-rotation alert"
            )
        finally:
            run(replica_dsn, "SELECT pg_wal_replay_resume()")
        assert alert["labels"]["backend"] == "replica1" and alert["labels"]["role"] == "replica"
        assert alert["annotations"]["description"].startswith("lag ")
        for _ in range(200):
            await board.check_all()
            if replica.in_rotation:
                break
            await asyncio.sleep(0.02)
        (resolved,) = await asyncio.to_thread(
            wait_for, lambda: alerts("resolved"), 10, "the resolution"
        )
        assert resolved["fingerprint"] == alert["fingerprint"]
    finally:
        await board.close()


def test_a_breaker_opening_alerts_and_closing_resolves(pg_dsn: str, configured: Any) -> None:
    import time

    from dbsight.proxy._config import ProxyConfig
    from dbsight.proxy._topology import Topology

    topology = Topology(
        ProxyConfig(
            listen="127.0.0.1:0", upstream=pg_dsn, breaker_min_requests=4,
            breaker_cooldown_s=0.2,
        )
    )  # fmt: skip

    def alerts(status: str) -> list[dict[str, Any]]:
        return [
            alert for body in posted(configured, "/hook") for alert in body["alerts"]
            if alert["labels"]["alertname"] == "DbsightBreakerOpen" and alert["status"] == status
        ]  # fmt: skip

    for _ in range(4):  # the primary's own failures (server errors, lost connections)
        topology.record("primary", False)
    assert topology.breakers["primary"].state == "open"
    (alert,) = wait_for(lambda: alerts("firing"), 10, "the breaker alert")
    assert alert["labels"]["backend"] == "primary"
    time.sleep(0.25)  # the cool-down: trial requests then close it again
    for _ in range(3):
        assert topology.primary_allowed()
        topology.record("primary", True)
    assert topology.breakers["primary"].state == "closed"
    wait_for(lambda: alerts("resolved"), 10, "the resolution")
