"""Against a real Alertmanager (0.25) on loopback: dbsight's alert goes in through its API
and comes out at a webhook in Alertmanager's own format, then its resolution too."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from notify_helpers import AlertmanagerServer, posted, wait_for

from dbsight.notify import Alert, AlertmanagerClient, Notifier, RetryPolicy, fingerprint


def _am_alerts(server: AlertmanagerServer) -> list[dict[str, Any]]:
    with urllib.request.urlopen(server.url + "/api/v2/alerts", timeout=5) as response:
        return list(json.load(response))


def test_an_alert_goes_through_alertmanager_and_resolves(
    alertmanager: AlertmanagerServer, httpserver: Any
) -> None:
    notifier = Notifier(
        alertmanager=AlertmanagerClient(alertmanager.url, resend_s=60),
        group_wait_s=0.0, group_interval_s=0.1,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.05),
    )  # fmt: skip
    labels = {
        "alertname": "DbsightSlowQuery", "severity": "warning", "service": "shop",
        "query_fingerprint": "8fbbdd2da99111f4", "route": "/orders/{id}",
    }  # fmt: skip
    annotations = {"summary": "SELECT orders took 1500 ms on /orders/{id}"}
    try:
        notifier.fire(Alert(labels, annotations))
        firing = wait_for(lambda: posted(httpserver, "/am-hook"), 20, "the firing notification")
        (body,) = firing
        assert body["version"] == "4" and body["status"] == "firing"
        assert body["receiver"] == "hook"
        assert body["groupLabels"] == {"alertname": "DbsightSlowQuery", "service": "shop"}
        assert body["groupKey"] == '{}:{alertname="DbsightSlowQuery", service="shop"}'
        (alert,) = body["alerts"]
        assert alert["labels"] == labels and alert["annotations"] == annotations
        # dbsight's fingerprint is Alertmanager's: the same function of the same labels
        assert alert["fingerprint"] == fingerprint(labels)
        (stored,) = _am_alerts(alertmanager)
        assert stored["status"]["state"] == "active"

        notifier.resolve(labels)
        resolved = wait_for(
            lambda: [b for b in posted(httpserver, "/am-hook") if b["status"] == "resolved"],
            20, "the resolved notification",
        )  # fmt: skip
        (alert,) = resolved[0]["alerts"]
        assert alert["status"] == "resolved" and alert["endsAt"] != "0001-01-01T00:00:00Z"
        assert alert["fingerprint"] == fingerprint(labels)
    finally:
        notifier.close()


def test_firing_alerts_are_sent_again_while_they_fire(
    alertmanager: AlertmanagerServer, httpserver: Any
) -> None:
    client = AlertmanagerClient(alertmanager.url, resend_s=0.3)
    notifier = Notifier(alertmanager=client, group_wait_s=0.0, group_interval_s=0.1)
    labels = {"alertname": "DbsightHealthCheckFailing", "severity": "critical", "service": "shop"}
    try:
        notifier.fire(Alert(labels, {"summary": "db down"}))
        wait_for(lambda: _am_alerts(alertmanager), 10, "the alert in Alertmanager")
        (am_sender,) = notifier.all_senders
        wait_for(lambda: am_sender.attempts >= 3, 10, "re-sends")
        (stored,) = _am_alerts(alertmanager)
        # valid for four re-sends ahead: were dbsight to stop, Alertmanager resolves it
        ends = time.mktime(time.strptime(stored["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert ends - time.mktime(time.gmtime()) < 10
    finally:
        notifier.close()
