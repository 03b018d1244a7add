"""The generic webhook: Alertmanager's webhook format, version 4, so that anything that
takes Alertmanager's webhook takes dbsight's alerts straight."""

from __future__ import annotations

from typing import Any

from ._http import post_json
from ._receiver import Notification

VERSION = "4"


def webhook_payload(notification: Notification, receiver: str) -> dict[str, Any]:
    """The document Alertmanager's webhook receiver POSTs."""
    return {
        "version": VERSION,
        "groupKey": notification.group_key,
        "truncatedAlerts": notification.truncated,
        "status": notification.status,
        "receiver": receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": notification.common_labels(),
        "commonAnnotations": notification.common_annotations(),
        "externalURL": notification.external_url,
        "alerts": [alert.to_webhook(notification.now) for alert in notification.alerts],
    }


class WebhookReceiver:
    def __init__(self, url: str, *, name: str = "webhook") -> None:
        self.url = url
        self.name = name

    def notify(self, notification: Notification) -> None:
        post_json(self.url, webhook_payload(notification, self.name))
