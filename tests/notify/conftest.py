"""Stand-in receivers for the notifier's tests, all real servers on loopback: an HTTP server
(pytest-httpserver's ``httpserver``) for the webhook, Slack, PagerDuty and Alertmanager's
own webhook; an SMTP server (aiosmtpd); a real Alertmanager (Debian's
prometheus-alertmanager); and a "hanging" receiver that accepts connections and never
answers."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from notify_helpers import AlertmanagerServer, SmtpServer, free_port, run_alertmanager

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


# -- SMTP --------------------------------------------------------------------------------
class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.envelopes.append(envelope)
        self.server.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    port = free_port()
    server = SmtpServer("127.0.0.1", port)
    controller = Controller(_Collector(server), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


# -- a receiver that never answers -----------------------------------------------------
@pytest.fixture
def hanging_url() -> Iterator[str]:
    """An HTTP URL whose server accepts connections (the kernel's backlog does) and never
    answers: a receiver that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


@pytest.fixture
def refused_url() -> str:
    """An HTTP URL nothing listens on: a receiver that is down."""
    return f"http://127.0.0.1:{free_port()}/hook"


# -- a real Alertmanager -----------------------------------------------------------------
@pytest.fixture
def alertmanager(httpserver: Any) -> Iterator[AlertmanagerServer]:
    """Alertmanager 0.25 on loopback, clustering off, routing every alert to the webhook
    ``/am-hook`` of ``httpserver`` (grouped by alertname and service, 1 s intervals)."""
    if not os.path.exists(ALERTMANAGER):
        from dbsight.testing.pytest_plugin import _missing_binaries

        _missing_binaries(f"no Alertmanager to test against: {ALERTMANAGER} is missing")
    httpserver.expect_request("/am-hook", method="POST").respond_with_data("ok")
    directory = tempfile.mkdtemp(prefix="dbsight-am-")
    config = os.path.join(directory, "alertmanager.yml")
    with open(config, "w") as file:
        file.write(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: [alertname, service]\n"
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: {httpserver.url_for('/am-hook')}\n"
            "        send_resolved: true\n"
        )
    try:
        with run_alertmanager(ALERTMANAGER, config, directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
