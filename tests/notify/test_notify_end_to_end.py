"""The issue's check: a slow statement in a held-out service, configured only by environment
variables, arrives at a local webhook as an Alertmanager-format alert."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from notify_helpers import free_port, posted, wait_for

HERE = Path(__file__).parent


def test_a_slow_statement_in_a_service_configured_by_environment_reaches_the_webhook(
    pg_dsn: str, httpserver: Any
) -> None:
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBSIGHT_")}
    env.update(
        SERVICE_DSN=pg_dsn,
        PYTHONPATH=str(HERE),
        DBSIGHT_SERVICE_NAME="reports",
        DBSIGHT_ALERT_WEBHOOK_URL=httpserver.url_for("/alerts"),
        DBSIGHT_ALERT_SLOW_QUERY_MS="250",
        DBSIGHT_ALERT_GROUP_WAIT_S="1",
    )
    service = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "held_out_service:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ],
        env=env, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def ready() -> bool:
            if service.poll() is not None:
                pytest.fail(f"the service exited: {service.communicate()[0].decode()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/report/31337", timeout=5):
                    return True
            except OSError:
                return False

        wait_for(ready, 30, "the service")
        (body,) = wait_for(lambda: posted(httpserver, "/alerts"), 15, "the alert")
    finally:
        service.terminate()
        service.wait(15)
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "webhook"
    assert body["groupLabels"] == {"alertname": "DbsightSlowQuery", "service": "reports"}
    assert body["groupKey"] == '{}:{alertname="DbsightSlowQuery", service="reports"}'
    assert body["truncatedAlerts"] == 0 and "commonAnnotations" in body
    (alert,) = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "DbsightSlowQuery"
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["route"] == "/report/{year}"
    assert "pg_sleep" in alert["annotations"]["statement"]
    assert float(alert["annotations"]["duration_ms"]) >= 400
    assert len(alert["fingerprint"]) == 16
    started = time.strptime(alert["startsAt"][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(started) - time.mktime(time.gmtime())) < 120
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"  # as Alertmanager shows a firing alert
    assert "31337" not in str(body)  # the parameter value stays in the service
