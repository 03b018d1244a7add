"""E-mail over SMTP: plain text and HTML alternatives; STARTTLS or implicit TLS (SMTPS, port
465) with the server's certificate verified, and SMTP AUTH, when asked. An SMTP 4xx reply
(try later) or a connection failure is retryable, a 5xx reply or refused credentials are
not."""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

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
        self,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        *,
        starttls: bool = False,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | str | None = None,
    ) -> None:
        if starttls and tls:
            raise ValueError("starttls and tls (implicit TLS) exclude each other")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls, self.tls = starttls, tls
        self.username = username
        self._password = password  # never in a message or repr
        self.ca_file = ca_file
        self._context: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        """Verifying context (the system's CAs, or ``ca_file``), made once; a bad CA file
        is a `NotifyError` that is not retried."""
        if self._context is None:
            try:
                self._context = ssl.create_default_context(
                    cafile=str(self.ca_file) if self.ca_file is not None else None
                )
            except (OSError, ssl.SSLError) as exc:
                raise NotifyError(f"SMTP CA file {self.ca_file}: {exc}", retryable=False) from None
        return self._context

    def _connect(self) -> smtplib.SMTP:
        if self.tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=TIMEOUT_S, context=self._tls_context()
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S)
        if self.starttls:
            try:
                smtp.starttls(context=self._tls_context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def notify(self, notification: Notification) -> None:
        message = email_message(notification, self.sender, self.to)
        try:
            with self._connect() as smtp:
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(
                f"SMTP {self.host}:{self.port} refused the login of {self.username!r} "
                f"({exc.smtp_code})", retryable=False,
            ) from None  # fmt: skip
        except smtplib.SMTPResponseException as exc:
            raise NotifyError(
                f"SMTP {exc.smtp_code} from {self.host}:{self.port}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifyError(
                f"SMTP recipients refused: {list(exc.recipients)}", retryable=False
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(f"SMTP {self.host}:{self.port}: {exc}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise NotifyError(
                f"SMTP {self.host}:{self.port}: certificate not trusted: {exc.verify_message}",
                retryable=False,
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise NotifyError(
                f"SMTP {self.host}:{self.port} unreachable: {exc}", retryable=True
            ) from None
