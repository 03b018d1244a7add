"""The Alertmanager configuration that goes with the rules: grouping, routing by severity to
the receivers ``critical``, ``warning`` and ``info``, inhibition, and each receiver's
integrations.

Who gets what (each integration only when configured):

    critical   PagerDuty, Slack, and its webhook
    warning    Slack, and its webhook
    info       e-mail, and its webhook

A receiver left without any integration is valid for Alertmanager and drops what reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._rules import SEVERITIES

_DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
_SMARTHOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}$")


@dataclass(frozen=True, slots=True)
class SlackTarget:
    """A Slack incoming webhook (``api_url``) and the channel to post to (empty: the
    webhook's own)."""

    api_url: str
    channel: str = ""


@dataclass(frozen=True, slots=True)
class PagerDutyTarget:
    """A PagerDuty Events API v2 integration; ``url`` another endpoint (a stand-in)."""

    routing_key: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class EmailTarget:
    """Recipients (comma-separated), the SMTP smarthost (``host:port``), the sender, an
    optional login, and whether the smarthost must offer STARTTLS."""

    to: str
    smarthost: str
    sender: str
    username: str = ""
    password: str = ""
    require_tls: bool = True

    def __post_init__(self) -> None:
        if not _SMARTHOST.match(self.smarthost):
            raise ValueError(f"smarthost must be host:port (got {self.smarthost!r})")
        addresses = [address.strip() for address in self.to.split(",")]
        if not all("@" in address for address in addresses) or "@" not in self.sender:
            raise ValueError("e-mail recipients and sender must be addresses (name@host)")
        if bool(self.username) != bool(self.password):
            raise ValueError("the SMTP login needs both a user name and a password")


def check_duration(name: str, value: str) -> str:
    """A Prometheus duration (``30s``, ``5m``, ``1h30m``), else a ValueError naming ``name``."""
    if not value or not _DURATION.match(value):
        raise ValueError(f"{name} must be a duration such as 30s, 5m or 4h (got {value!r})")
    return value


def alertmanager_config(
    *,
    group_label: str = "job",
    webhooks: Mapping[str, str] | None = None,
    slack: SlackTarget | None = None,
    pagerduty: PagerDutyTarget | None = None,
    email: EmailTarget | None = None,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict[str, Any]:
    """An Alertmanager configuration routing dbsight's alerts by severity to receivers named
    ``critical``, ``warning`` and ``info`` (see the module's table); ``webhooks`` gives any
    of them a webhook as well."""
    for name, value in (("group_wait", group_wait), ("group_interval", group_interval),
                        ("repeat_interval", repeat_interval)):  # fmt: skip
        check_duration(name, value)
    webhooks = webhooks or {}
    repeat = {"critical": "1h", "warning": repeat_interval, "info": "24h"}
    return {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", group_label],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [
                {
                    "receiver": severity,
                    "matchers": [f'severity="{severity}"'],
                    "repeat_interval": repeat[severity],
                }
                for severity in SEVERITIES
            ],
        },
        # the same alert at a lower severity says nothing new while the higher one fires
        "inhibit_rules": [
            {
                "source_matchers": [f'severity="{high}"'],
                "target_matchers": [f'severity="{low}"'],
                "equal": ["alertname", group_label],
            }
            for high, low in (("critical", "warning"), ("critical", "info"), ("warning", "info"))
        ],
        "receivers": [
            _receiver(severity, webhooks.get(severity), slack, pagerduty, email)
            for severity in SEVERITIES
        ],
    }


def receiver_integrations(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each receiver's integrations (``pagerduty``, ``slack``, ``email``, ``webhook``)."""
    return {
        receiver["name"]: [key.removesuffix("_configs") for key in receiver if key != "name"]
        for receiver in config["receivers"]
    }


def _receiver(
    severity: str,
    url: str | None,
    slack: SlackTarget | None,
    pagerduty: PagerDutyTarget | None,
    email: EmailTarget | None,
) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": severity}
    if pagerduty is not None and severity == "critical":
        page: dict[str, Any] = {"routing_key": pagerduty.routing_key, "send_resolved": True}
        if pagerduty.url:
            page["url"] = pagerduty.url
        receiver["pagerduty_configs"] = [page]
    if slack is not None and severity in ("critical", "warning"):
        post: dict[str, Any] = {"api_url": slack.api_url, "send_resolved": True}
        if slack.channel:
            post["channel"] = slack.channel
        receiver["slack_configs"] = [post]
    if email is not None and severity == "info":
        mail: dict[str, Any] = {
            "to": email.to,
            "from": email.sender,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": True,
        }
        if email.username:
            mail["auth_username"] = email.username
            mail["auth_password"] = email.password
        receiver["email_configs"] = [mail]
    if url:
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True}]
    return receiver
