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
