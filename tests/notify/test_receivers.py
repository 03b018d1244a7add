"""Each receiver straight against a local stand-in, its payload checked against the format
its documentation gives, and its failures classified (retryable or not)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from notify_helpers import SmtpServer, posted

from dbsight.notify import (
    Alert,
    AlertmanagerClient,
    EmailReceiver,
    Notification,
    NotifyError,
    PagerDutyReceiver,
    SlackReceiver,
    WebhookReceiver,
)

T0 = 1_765_000_000.0


def _alert(name: str = "DbsightSlowQuery", ends: float | None = None, **labels: str) -> Alert:
    return Alert(
        {"alertname": name, "severity": "warning", "service": "shop", **labels},
        {"summary": f"{name} summary", "description": "SELECT * FROM t WHERE id = $1"},
        starts_at=T0,
        ends_at=ends,
    )


def _notification(*alerts: Alert, now: float = T0 + 10) -> Notification:
    return Notification({"alertname": alerts[0].name, "service": "shop"}, alerts, now)


def test_webhook_posts_alertmanagers_version_4_format(httpserver: Any) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    firing = _alert(route="/a")
    resolved = _alert(route="/b", ends=T0 + 5)
    WebhookReceiver(httpserver.url_for("/hook")).notify(_notification(firing, resolved))
    (body,) = posted(httpserver, "/hook")
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "webhook"
    assert body["groupKey"] == '{}:{alertname="DbsightSlowQuery", service="shop"}'
    assert body["groupLabels"] == {"alertname": "DbsightSlowQuery", "service": "shop"}
    assert body["commonLabels"] == {
        "alertname": "DbsightSlowQuery", "severity": "warning", "service": "shop"
    }  # fmt: skip
    assert body["commonAnnotations"]["summary"] == "DbsightSlowQuery summary"
    assert body["truncatedAlerts"] == 0
    first, second = body["alerts"]
    assert set(first) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"
    }  # fmt: skip
    assert first["status"] == "firing" and first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["startsAt"] == "2025-12-06T05:46:40.000Z"
    assert first["labels"]["route"] == "/a"
    assert first["fingerprint"] == firing.fingerprint and len(first["fingerprint"]) == 16
    assert second["status"] == "resolved" and second["endsAt"] == "2025-12-06T05:46:45.000Z"


def test_webhook_statuses_split_5xx_from_4xx(httpserver: Any, refused_url: str) -> None:
    httpserver.expect_request("/busy").respond_with_data("later", status=503)
    httpserver.expect_request("/bad").respond_with_data("no such hook", status=404)
    httpserver.expect_request("/slow-down").respond_with_data("", status=429)
    for path, retryable in (("/busy", True), ("/bad", False), ("/slow-down", True)):
        with pytest.raises(NotifyError) as caught:
            WebhookReceiver(httpserver.url_for(path)).notify(_notification(_alert()))
        assert caught.value.retryable is retryable, path
    with pytest.raises(NotifyError) as caught:
        WebhookReceiver(refused_url).notify(_notification(_alert()))
    assert caught.value.retryable and "unreachable" in str(caught.value)


def test_an_error_names_the_host_not_the_secret_path(httpserver: Any) -> None:
    httpserver.expect_request("/services/T000/B000/secret-token").respond_with_data("", status=403)
    with pytest.raises(NotifyError) as caught:
        SlackReceiver(httpserver.url_for("/services/T000/B000/secret-token")).notify(
            _notification(_alert())
        )
    assert "secret-token" not in str(caught.value) and "403" in str(caught.value)


def test_slack_gets_block_kit(httpserver: Any) -> None:
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    SlackReceiver(httpserver.url_for("/slack")).notify(
        _notification(_alert(route="/a"), _alert(route="/b", ends=T0 + 1))
    )
    (body,) = posted(httpserver, "/slack")
    assert body["text"] == "[FIRING:1] DbsightSlowQuery shop"
    header, first, second, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert first["type"] == "section" and first["text"]["type"] == "mrkdwn"
    assert "*DbsightSlowQuery summary*" in first["text"]["text"]
    assert "`route=/a`" in first["text"]["text"]
    assert second["text"]["text"].startswith(":white_check_mark:")
    assert context["type"] == "context" and context["elements"][0]["type"] == "mrkdwn"


def test_slack_keeps_to_fifty_blocks(httpserver: Any) -> None:
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    alerts = [_alert(route=f"/r{n}") for n in range(60)]
    SlackReceiver(httpserver.url_for("/slack")).notify(_notification(*alerts))
    (body,) = posted(httpserver, "/slack")
    assert len(body["blocks"]) == 50
    assert "12 more alert(s) not shown" in body["blocks"][-1]["elements"][0]["text"]
    assert len(body["blocks"][0]["text"]["text"]) <= 150


def test_pagerduty_triggers_then_resolves_under_one_dedup_key(httpserver: Any) -> None:
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "x"}, status=202
    )
    receiver = PagerDutyReceiver("R0UTINGKEY", url=httpserver.url_for("/v2/enqueue"))
    receiver.notify(_notification(_alert(route="/a")))
    receiver.notify(_notification(_alert(route="/a", ends=T0 + 5)))
    trigger, resolve = posted(httpserver, "/v2/enqueue")
    group_key = '{}:{alertname="DbsightSlowQuery", service="shop"}'
    key = hashlib.sha256(group_key.encode()).hexdigest()
    assert trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == key
    payload = trigger["payload"]
    assert payload["severity"] == "warning" and payload["source"] == "shop"
    assert payload["summary"].startswith("[FIRING:1] DbsightSlowQuery shop: ")
    assert payload["timestamp"] == "2025-12-06T05:46:40.000Z"
    assert payload["custom_details"]["firing"][0]["labels"]["route"] == "/a"
    assert resolve == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": key}


def test_pagerduty_rejects_a_bad_event_for_good(httpserver: Any) -> None:
    httpserver.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "errors": ["'routing_key' is invalid"]}, status=400
    )
    with pytest.raises(NotifyError) as caught:
        PagerDutyReceiver("bad", url=httpserver.url_for("/v2/enqueue")).notify(
            _notification(_alert())
        )
    assert not caught.value.retryable and "invalid" in str(caught.value)


def test_email_has_plain_text_and_html(smtp_server: SmtpServer) -> None:
    receiver = EmailReceiver(
        smtp_server.host, smtp_server.port, "dbsight@example.test",
        ["ops@example.test", "dba@example.test"],
    )  # fmt: skip
    receiver.notify(_notification(_alert(route="/a<b>"), _alert(route="/c", ends=T0 + 1)))
    (message,) = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["ops@example.test", "dba@example.test"]
    assert message["Subject"] == "[FIRING:1] DbsightSlowQuery shop"
    assert message["From"] == "dbsight@example.test"
    assert message.is_multipart() and message.get_content_type() == "multipart/alternative"
    parts: Any = message.get_payload()
    text, html = parts
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    plain = text.get_payload(decode=True).decode()
    assert "[FIRING] DbsightSlowQuery summary" in plain and "[RESOLVED]" in plain
    assert "route=/a<b>" in plain
    page = html.get_payload(decode=True).decode()
    assert "route=/a&lt;b&gt;" in page and "<table" in page


def test_email_server_down_is_retryable(refused_url: str) -> None:
    port = int(refused_url.rsplit(":", 1)[1].split("/")[0])
    receiver = EmailReceiver("127.0.0.1", port, "a@example.test", ["b@example.test"])
    with pytest.raises(NotifyError) as caught:
        receiver.notify(_notification(_alert()))
    assert caught.value.retryable


def test_email_with_starttls_against_a_server_without_it_fails_for_good(
    smtp_server: SmtpServer,
) -> None:
    receiver = EmailReceiver(
        smtp_server.host, smtp_server.port, "a@example.test", ["b@example.test"], starttls=True
    )
    with pytest.raises(NotifyError):
        receiver.notify(_notification(_alert()))
    assert smtp_server.messages == []


def test_alertmanager_client_posts_the_api_v2_shape(httpserver: Any) -> None:
    httpserver.expect_request("/api/v2/alerts", method="POST").respond_with_data("")
    client = AlertmanagerClient(httpserver.url_for("/"), resend_s=60)
    now = time.time()
    client.post([_alert(route="/a"), _alert(route="/b", ends=T0 + 5)], now)
    (body,) = posted(httpserver, "/api/v2/alerts")
    firing, resolved = body
    assert set(firing) == {"labels", "annotations", "startsAt", "endsAt"}
    assert firing["startsAt"] == "2025-12-06T05:46:40.000Z"
    # a firing alert stays valid for four re-sends: should dbsight stop, it resolves then
    assert firing["endsAt"] > resolved["endsAt"]
    assert resolved["endsAt"] == "2025-12-06T05:46:45.000Z"
