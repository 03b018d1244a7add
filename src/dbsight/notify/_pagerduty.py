"""PagerDuty Events API v2: one event per group, ``trigger`` while any alert of it fires,
``resolve`` when all are resolved, under a ``dedup_key`` derived from the group key (as
Alertmanager does), so that the resolve closes the incident the trigger opened."""

from __future__ import annotations

import hashlib
from typing import Any

from ._alert import rfc3339
from ._http import post_json
from ._receiver import Notification

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SUMMARY_MAX = 1024
# PagerDuty's severities; dbsight's critical/warning/info map onto them as they are.
_SEVERITIES = {"critical", "error", "warning", "info"}


def dedup_key(notification: Notification) -> str:
    return hashlib.sha256(notification.group_key.encode()).hexdigest()


def pagerduty_event(notification: Notification, routing_key: str) -> dict[str, Any]:
    key = dedup_key(notification)
    if notification.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    firing = notification.firing
    common = notification.common_labels()
    severity = common.get("severity", firing[0].labels.get("severity", "warning"))
    summaries = "; ".join(a.annotations.get("summary", a.name) for a in firing)
    summary = f"{notification.title()}: {summaries}"
    if len(summary) > _SUMMARY_MAX:
        summary = summary[: _SUMMARY_MAX - 1] + "…"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "client": "dbsight",
        "payload": {
            "summary": summary,
            "source": common.get("service", "dbsight"),
            "severity": severity if severity in _SEVERITIES else "warning",
            "timestamp": rfc3339(min(a.starts_at for a in firing)),
            "group": common.get("service"),
            "class": common.get("alertname"),
            "custom_details": {
                "firing": [
                    {"labels": dict(a.labels), "annotations": dict(a.annotations)} for a in firing
                ],
                "num_firing": len(firing),
                "num_resolved": len(notification.resolved),
            },
        },
    }


class PagerDutyReceiver:
    name = "pagerduty"

    def __init__(self, routing_key: str, *, url: str = EVENTS_URL) -> None:
        self.routing_key = routing_key
        self.url = url

    def notify(self, notification: Notification) -> None:
        post_json(self.url, pagerduty_event(notification, self.routing_key))
