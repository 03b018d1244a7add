"""The routing ``dbsight alerts export --alertmanager-config`` writes, loaded into a real
Alertmanager that delivers to local stand-ins: Slack (its ``api_url``) and PagerDuty (its
``url``) on pytest-httpserver, e-mail to aiosmtpd as the smarthost. Critical alerts page and
go to Slack, warnings to Slack, info to e-mail and its webhook; a critical alert inhibits the
warning of the same name and service."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from notify_helpers import SmtpServer, posted, run_alertmanager, wait_for
from typer.testing import CliRunner

from dbsight.cli import app as cli

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def _alert(name: str, severity: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "job": "api", "severity": severity},
        "annotations": {"summary": f"{name} ({severity}) summary"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5)),
    }


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _export(tmp_path: Path, *args: str) -> Path:
    config = tmp_path / "alertmanager.yml"
    result = CliRunner().invoke(cli, [
        "alerts", "export", "-o", str(tmp_path / "rules.yml"),
        "--alertmanager-config", str(config), *args,
    ], env={"DBSIGHT_ALERT_PAGERDUTY_ROUTING_KEY": "", "DBSIGHT_ALERT_SMTP_PASSWORD": ""})
    assert result.exit_code == 0, result.output
    return config


def test_a_real_alertmanager_delivers_by_severity_to_slack_pagerduty_and_email(
    httpserver: Any, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    for binary in (ALERTMANAGER, AMTOOL):
        if not Path(binary).exists():
            from dbsight.testing.pytest_plugin import _missing_binaries

            _missing_binaries(f"{binary} is missing (Debian package prometheus-alertmanager)")
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    httpserver.expect_request("/pagerduty", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "x"}, status=202
    )
    httpserver.expect_request("/info", method="POST").respond_with_data("ok")
    config = _export(
        tmp_path,
        "--slack-webhook-url", httpserver.url_for("/slack"), "--slack-channel", "#db-alerts",
        "--pagerduty-routing-key", ROUTING_KEY,
        "--pagerduty-url", httpserver.url_for("/pagerduty"),
        "--email-to", "dba@example.test", "--smtp-smarthost",
        f"{smtp_server.host}:{smtp_server.port}", "--smtp-from", "alertmanager@example.test",
        "--no-smtp-require-tls", "--info-url", httpserver.url_for("/info"),
        "--group-wait", "0s", "--group-interval", "1s",
    )  # fmt: skip
    check = subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    routing = yaml.safe_load(config.read_text())
    kinds = {r["name"]: sorted(k for k in r if k != "name") for r in routing["receivers"]}
    assert kinds == {
        "critical": ["pagerduty_configs", "slack_configs"],
        "warning": ["slack_configs"],
        "info": ["email_configs", "webhook_configs"],
    }

    directory = tempfile.mkdtemp(prefix="dbsight-am-routing-")
    try:
        with run_alertmanager(ALERTMANAGER, str(config), directory) as am:
            # the critical alert first: with group_wait 0s a warning that arrives in the same
            # batch can be flushed before the inhibitor has seen its source (the exported
            # default group_wait of 30s covers that race in production)
            _post(am.url, [_alert("DbsightPoolExhausted", "critical")])
            (page,) = wait_for(lambda: posted(httpserver, "/pagerduty"), 30, "the page")
            _post(am.url, [
                _alert("DbsightPoolExhausted", "warning"),  # inhibited by the critical one
                _alert("DbsightHTTPLatencyHigh", "warning"),
                _alert("DbsightSlowStatements", "info"),
            ])  # fmt: skip
            slack = wait_for(
                lambda: len(posted(httpserver, "/slack")) >= 2 and posted(httpserver, "/slack"),
                30, "the Slack posts",
            )  # fmt: skip
            wait_for(lambda: smtp_server.messages, 30, "the e-mail")
            (info,) = wait_for(lambda: posted(httpserver, "/info"), 30, "the info webhook")
            with urllib.request.urlopen(am.url + "/api/v2/alerts", timeout=10) as response:
                held = json.loads(response.read())
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    assert page["routing_key"] == ROUTING_KEY and page["event_action"] == "trigger"
    assert "DbsightPoolExhausted" in page["payload"]["summary"]
    titles = [attachment["title"] for post in slack for attachment in post["attachments"]]
    assert {post["channel"] for post in slack} == {"#db-alerts"}
    assert any("DbsightPoolExhausted" in t and "critical" in t for t in titles), titles
    assert any("DbsightHTTPLatencyHigh" in t for t in titles), titles
    assert not any("DbsightPoolExhausted" in t and "warning" in t for t in titles), titles
    (mail,) = smtp_server.messages
    assert "DbsightSlowStatements" in mail["Subject"]
    assert smtp_server.envelopes[0].rcpt_tos == ["dba@example.test"]
    assert [a["labels"]["alertname"] for a in info["alerts"]] == ["DbsightSlowStatements"]
    inhibited = [
        a for a in held
        if a["labels"]["alertname"] == "DbsightPoolExhausted"
        and a["labels"]["severity"] == "warning"
    ]  # fmt: skip
    assert [a["status"]["state"] for a in inhibited] == ["suppressed"]
    assert inhibited[0]["status"]["inhibitedBy"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--email-to", "dba@example.test"], "go together"),
        (["--slack-channel", "#x"], "--slack-channel needs --slack-webhook-url"),
        (["--slack-webhook-url", "hooks.slack.test/x"], "is not an http:// or https:// URL"),
        (["--pagerduty-url", "http://127.0.0.1:9/pd"], "needs --pagerduty-routing-key"),
        (["--email-to", "dba@example.test", "--smtp-smarthost", "mail.test",
          "--smtp-from", "am@example.test"], "smarthost must be host:port"),
        (["--email-to", "dba@example.test", "--smtp-smarthost", "mail.test:25",
          "--smtp-from", "am@example.test", "--smtp-auth-username", "u"], "SMTP login"),
        (["--group-wait", "soon"], "group_wait must be a duration"),
    ],
)
def test_bad_receiver_flags_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli, [
        "alerts", "export", "-o", str(tmp_path / "rules.yml"),
        "--alertmanager-config", str(tmp_path / "am.yml"), *args,
    ], env={"DBSIGHT_ALERT_PAGERDUTY_ROUTING_KEY": "", "DBSIGHT_ALERT_SMTP_PASSWORD": ""})
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert not (tmp_path / "am.yml").exists()


def test_an_smtp_login_passes_amtool(tmp_path: Path) -> None:
    config = _export(
        tmp_path, "--email-to", "a@example.test, b@example.test",
        "--smtp-smarthost", "mail.example.test:587", "--smtp-from", "am@example.test",
        "--smtp-auth-username", "am", "--smtp-auth-password", "pw",
        "--pagerduty-routing-key", ROUTING_KEY,
    )  # fmt: skip
    if not Path(AMTOOL).exists():
        pytest.skip("amtool is missing")
    check = subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (mail,) = yaml.safe_load(config.read_text())["receivers"][2]["email_configs"]
    assert mail["auth_username"] == "am" and mail["require_tls"] is True
