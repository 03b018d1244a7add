"""E-mail over SMTP: plain text and HTML alternatives, STARTTLS when asked. An SMTP 4xx
reply (try later) or a connection failure is retryable, a 5xx reply is not."""

from __future__ import annotations

import html
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ._alert import rfc3339
from ._receiver import Notification, NotifyError

TIMEOUT_S = 10.0


def email_message(notification: Notification, sender: str, to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notification.title()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(notification.now)
    message["Message-ID"] = make_msgid(domain="dbsight")
    text_lines: list[str] = []
    rows: list[str] = []
    for alert in notification.alerts:
        status = alert.status(notification.now)
        summary = alert.annotations.get("summary", alert.name)
        description = alert.annotations.get("description", "")
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        text_lines += [
            f"[{status.upper()}] {summary}",
            *([description] if description else []),
            f"  labels: {labels}",
            f"  started: {rfc3339(alert.starts_at)}",
            *(
                [f"  ended: {rfc3339(alert.ends_at)}"]
                if status == "resolved" and alert.ends_at
                else []
            ),
            "",
        ]
        rows.append(
            "<tr><td><b>{}</b></td><td><b>{}</b><br>{}<br><code>{}</code></td></tr>".format(
                html.escape(status.upper()), html.escape(summary),
                html.escape(description).replace("\n", "<br>"), html.escape(labels),
            )
        )  # fmt: skip
    message.set_content(f"{notification.title()}\n\n" + "\n".join(text_lines))
    message.add_alternative(
        '<html><body><h2>{}</h2><table cellpadding="6">{}</table>'
        '<p style="color:#666">dbsight · {}</p></body></html>'.format(
            html.escape(notification.title()), "".join(rows), html.escape(notification.group_key)
        ),
        subtype="html",
    )
    return message


class EmailReceiver:
    name = "email"

    def __init__(
        self, host: str, port: int, sender: str, to: list[str], *, starttls: bool = False
    ) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls = starttls

    def notify(self, notification: Notification) -> None:
        message = email_message(notification, self.sender, self.to)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls()
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise NotifyError(
                f"SMTP {exc.smtp_code} from {self.host}:{self.port}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifyError(
                f"SMTP recipients refused: {list(exc.recipients)}", retryable=False
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise NotifyError(
                f"SMTP {self.host}:{self.port} unreachable: {exc}", retryable=True
            ) from None
