"""Slack incoming webhooks, with Block Kit blocks (Alertmanager's Slack receiver sends the
legacy attachments only): a header, a section per alert, a context line."""

from __future__ import annotations

from typing import Any

from ._http import post_json
from ._receiver import Notification

# Block Kit limits: 50 blocks per message, 150 characters of header, 3000 of section text.
MAX_BLOCKS = 50
_HEADER_MAX = 150
_SECTION_MAX = 3000
_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notification: Notification) -> dict[str, Any]:
    title = notification.title()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_MAX)}}
    ]
    alerts = list(notification.alerts)
    room = MAX_BLOCKS - 2  # the header and the context
    for alert in alerts[:room]:
        status = alert.status(notification.now)
        icon = (
            ":white_check_mark:"
            if status == "resolved"
            else _ICONS.get(alert.labels.get("severity", ""), ":warning:")
        )
        summary = alert.annotations.get("summary") or alert.name
        lines = [f"{icon} *{summary}*"]
        description = alert.annotations.get("description")
        if description:
            lines.append(description)
        labels = ", ".join(f"`{k}={v}`" for k, v in sorted(alert.labels.items()))
        lines.append(labels)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), _SECTION_MAX)},
            }
        )
    hidden = len(alerts) - room + notification.truncated
    context = f"dbsight · {notification.group_key}"
    if hidden > 0:
        context += f" · {hidden} more alert(s) not shown"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, _SECTION_MAX)}]}
    )
    return {"text": title, "blocks": blocks}


class SlackReceiver:
    name = "slack"

    def __init__(self, url: str) -> None:
        self.url = url

    def notify(self, notification: Notification) -> None:
        post_json(self.url, slack_payload(notification))
