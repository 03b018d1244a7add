"""A real Alertmanager: its API v2 takes the alerts themselves (POST /api/v2/alerts) and
does the grouping, inhibition, silences and routing. As Prometheus does, a firing alert is
sent again while it fires, with an ``endsAt`` a few re-sends ahead: should this process
stop, Alertmanager resolves it by itself. A resolved one is sent with its own ``endsAt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._alert import Alert, rfc3339
from ._http import post_json

# How many re-send intervals a firing alert stays valid without being sent again.
VALID_FOR_RESENDS = 4


def alertmanager_alerts(
    alerts: Sequence[Alert], now: float, resend_s: float
) -> list[dict[str, Any]]:
    documents = []
    for alert in alerts:
        ends = alert.ends_at if alert.ends_at is not None else now + VALID_FOR_RESENDS * resend_s
        document: dict[str, Any] = {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(ends),
        }
        if alert.generator_url:
            document["generatorURL"] = alert.generator_url
        documents.append(document)
    return documents


class AlertmanagerClient:
    """Posts alerts to ``url`` (the Alertmanager's base URL)."""

    name = "alertmanager"

    def __init__(self, url: str, *, resend_s: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resend_s = resend_s

    def post(self, alerts: Sequence[Alert], now: float) -> None:
        post_json(self.url, alertmanager_alerts(alerts, now, self.resend_s))
