"""E-mail with SMTP AUTH, over STARTTLS and over implicit TLS (SMTPS), against aiosmtpd with
a self-signed certificate made here by openssl: the certificate is verified (against
``alert_smtp_ca_file``), the login is checked, and the failures are told apart."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from notify_helpers import SmtpServer, free_port

import dbsight
from dbsight.notify import Alert, EmailReceiver, Notification, NotifyError, receivers_from_settings

USER, PASSWORD = "dbsight", "mail-s3cret"
# aiosmtpd warns of AUTH without STARTTLS even on an implicit-TLS server (it is TLS all along)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.envelopes.append((session.authenticated, envelope))
        self.server.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_tls(certificate: tuple[Path, Path]) -> Iterator[Callable[[str], SmtpServer]]:
    """``smtp_tls(mode)``: aiosmtpd wanting a login, with STARTTLS required
    (``"starttls"``) or TLS from the first byte (``"implicit"``)."""
    from aiosmtpd.controller import Controller

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    controllers: list[Any] = []

    def start(mode: str) -> SmtpServer:
        port = free_port()
        server = SmtpServer("127.0.0.1", port)
        options: dict[str, Any] = {"authenticator": _authenticator, "auth_required": True}
        if mode == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context, auth_require_tls=False)
        controller = Controller(_Collector(server), hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for controller in controllers:
        controller.stop()


def _notification() -> Notification:
    alert = Alert({"alertname": "DbsightSlowQuery", "severity": "warning", "service": "shop"},
                  {"summary": "a slow statement"})  # fmt: skip
    return Notification({"alertname": "DbsightSlowQuery"}, (alert,), alert.starts_at + 1)


def _receiver(server: SmtpServer, cert: Path | None, **options: Any) -> EmailReceiver:
    return EmailReceiver(
        server.host, server.port, "dbsight@example.test", ["ops@example.test"],
        ca_file=cert, **options,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_mail_goes_out_over_tls_with_a_login(
    smtp_tls: Any, certificate: tuple[Path, Path], mode: str
) -> None:
    server = smtp_tls(mode)
    tls = {"starttls": True} if mode == "starttls" else {"tls": True}
    _receiver(server, certificate[0], username=USER, password=PASSWORD, **tls).notify(
        _notification()
    )
    ((login, envelope),) = server.envelopes
    assert login is True and envelope.rcpt_tos == ["ops@example.test"]
    assert "DbsightSlowQuery" in server.messages[0]["Subject"]


def test_a_refused_login_is_not_retried_and_does_not_show_the_password(
    smtp_tls: Any, certificate: tuple[Path, Path]
) -> None:
    server = smtp_tls("implicit")
    receiver = _receiver(server, certificate[0], tls=True, username=USER, password="wrong-pw")
    with pytest.raises(NotifyError) as raised:
        receiver.notify(_notification())
    assert not raised.value.retryable
    assert "refused the login of 'dbsight'" in str(raised.value)
    assert "wrong-pw" not in str(raised.value)
    assert server.messages == []


def test_an_untrusted_certificate_is_refused_for_good(smtp_tls: Any) -> None:
    server = smtp_tls("implicit")
    receiver = _receiver(server, None, tls=True, username=USER, password=PASSWORD)
    with pytest.raises(NotifyError) as raised:
        receiver.notify(_notification())
    assert not raised.value.retryable and "certificate not trusted" in str(raised.value)
    assert server.messages == []


def test_without_a_login_the_server_refuses(smtp_tls: Any, certificate: tuple[Path, Path]) -> None:
    server = smtp_tls("starttls")
    with pytest.raises(NotifyError) as raised:
        _receiver(server, certificate[0], starttls=True).notify(_notification())
    assert not raised.value.retryable  # 530: authentication required
    assert server.messages == []


def test_settings_build_the_receiver_and_keep_the_password_secret(
    smtp_tls: Any, certificate: tuple[Path, Path]
) -> None:
    server = smtp_tls("implicit")
    settings = dbsight.Settings(
        alert_smtp_host=server.host, alert_smtp_port=server.port,
        alert_smtp_from="dbsight@example.test", alert_smtp_to="ops@example.test",
        alert_smtp_tls=True, alert_smtp_ca_file=certificate[0],
        alert_smtp_username=USER, alert_smtp_password=PASSWORD,
    )  # fmt: skip
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    (receiver,) = receivers_from_settings(settings)
    receiver.notify(_notification())
    assert len(server.messages) == 1


def test_settings_refuse_half_a_login_and_two_kinds_of_tls() -> None:
    with pytest.raises(dbsight.ConfigError, match="alert_smtp_username and alert_smtp_password"):
        dbsight.Settings(alert_smtp_username="u")
    with pytest.raises(dbsight.ConfigError, match="exclude each other"):
        dbsight.Settings(alert_smtp_starttls=True, alert_smtp_tls=True)
