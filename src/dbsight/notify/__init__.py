"""Alert notifications for dbsight's own events, after Alertmanager's notify/ package.

Sources (`AlertSources`) turn a slow statement, an advice event, an N+1 finding or a failing
health check into an `Alert`; the `Notifier` deduplicates them by fingerprint, groups them
(alertname and service), applies `Silences` and hands each group to its receivers side by
side: a real Alertmanager (`AlertmanagerClient`), a webhook in Alertmanager's format
(`WebhookReceiver`), Slack (`SlackReceiver`), PagerDuty (`PagerDutyReceiver`) and e-mail
(`EmailReceiver`), each retried with backoff when its failure is retryable. Configured from
settings (``alert_*``, ``alertmanager_url``) by the runtime: see docs/notifications.md.
"""

from ._alert import Alert, fingerprint, label_string, rfc3339
from ._alertmanager import AlertmanagerClient, alertmanager_alerts
from ._dispatch import Notifier
from ._email import EmailReceiver, email_message
from ._metrics import NotifyMetrics
from ._pagerduty import PagerDutyReceiver, dedup_key, pagerduty_event
from ._receiver import Notification, NotifyError, Receiver
from ._sender import RetryPolicy
from ._silence import Matcher, Silence, Silences, silences
from ._sink import (
    NotifierSink,
    alert_backend,
    alert_breaker,
    alerting_configured,
    notifier_sink,
    receivers_from_settings,
)
from ._slack import SlackReceiver, slack_payload
from ._sources import AlertSources
from ._webhook import WebhookReceiver, webhook_payload

__all__ = [
    "Alert",
    "AlertSources",
    "AlertmanagerClient",
    "EmailReceiver",
    "Matcher",
    "Notification",
    "Notifier",
    "NotifierSink",
    "NotifyError",
    "NotifyMetrics",
    "PagerDutyReceiver",
    "Receiver",
    "RetryPolicy",
    "Silence",
    "Silences",
    "SlackReceiver",
    "WebhookReceiver",
    "alert_backend",
    "alert_breaker",
    "alerting_configured",
    "alertmanager_alerts",
    "dedup_key",
    "email_message",
    "fingerprint",
    "label_string",
    "notifier_sink",
    "pagerduty_event",
    "receivers_from_settings",
    "rfc3339",
    "silences",
    "slack_payload",
    "webhook_payload",
]
