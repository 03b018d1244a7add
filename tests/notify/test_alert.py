"""The alert model, the silence matchers and the settings that turn the notifier on."""

from __future__ import annotations

import time

import pytest

import dbsight
from dbsight.core import ConfigError
from dbsight.notify import (
    Alert,
    Matcher,
    Silences,
    alerting_configured,
    fingerprint,
    label_string,
    receivers_from_settings,
    rfc3339,
)


def test_the_fingerprint_ignores_label_order_and_tells_label_sets_apart() -> None:
    a = {"alertname": "X", "severity": "warning", "service": "shop"}
    b = {"service": "shop", "alertname": "X", "severity": "warning"}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "route": "/a"})
    # the separators keep {"ab": "c"} and {"a": "bc"} apart
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})
    # Prometheus' model.LabelSet{}.Fingerprint() is FNV-1a's offset basis
    assert fingerprint({}) == "cbf29ce484222325"


def test_label_strings_are_sorted_and_quoted() -> None:
    assert label_string({"service": 'a"b', "alertname": "X"}) == '{alertname="X", service="a\\"b"}'


def test_an_alert_needs_its_three_labels() -> None:
    with pytest.raises(ValueError, match="severity"):
        Alert({"alertname": "X", "service": "shop"})


def test_status_follows_ends_at() -> None:
    now = time.time()
    labels = {"alertname": "X", "severity": "info", "service": "s"}
    assert Alert(labels).status() == "firing"
    assert Alert(labels, ends_at=now + 60).status(now) == "firing"
    assert Alert(labels, ends_at=now - 1).status(now) == "resolved"
    assert Alert(labels).resolved(now).status(now + 1) == "resolved"
    assert rfc3339(0.9995) == "1970-01-01T00:00:01.000Z"


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('service!="api"', {"service": "web"}, True),
        ('alertname=~"Dbsight.*"', {"alertname": "DbsightSlowQuery"}, True),
        ('alertname=~"Slow"', {"alertname": "DbsightSlowQuery"}, False),  # anchored
        ('route!~"/admin/.*"', {"route": "/admin/x"}, False),
        ('route=""', {}, True),  # a missing label is the empty value
    ],
)
def test_matchers(text: str, labels: dict[str, str], matches: bool) -> None:
    assert Matcher.parse(text).matches(labels) is matches


def test_bad_matchers_and_silences_are_refused() -> None:
    with pytest.raises(ValueError, match="not a matcher"):
        Matcher.parse("severity")
    with pytest.raises(ValueError):
        Matcher.parse('route=~"(unclosed"')
    silences = Silences()
    with pytest.raises(ValueError, match="at least one matcher"):
        silences.add([], 60)
    with pytest.raises(ValueError, match="more than 0"):
        silences.add(["a=b"], 0)


def test_silences_end() -> None:
    silences = Silences()
    silence = silences.add(["service=shop"], 0.2, "deploy")
    labels = {"service": "shop"}
    assert silences.mutes(labels) and not silences.mutes({"service": "api"})
    assert silence.to_dict()["matchers"] == [
        {"name": "service", "value": "shop", "isRegex": False, "isEqual": True}
    ]
    assert not silences.mutes(labels, time.time() + 1)
    time.sleep(0.25)
    assert silences.list() == [] and not silences.mutes(labels)
    assert not silences.expire(silence.id)


def test_nothing_is_configured_by_default_and_each_setting_adds_its_receiver() -> None:
    assert not alerting_configured(dbsight.Settings())
    settings = dbsight.Settings(
        alert_webhook_url="http://127.0.0.1:1/hook",
        alert_slack_webhook_url="https://hooks.slack.test/x",
        alert_pagerduty_routing_key="key",
        alert_smtp_host="127.0.0.1", alert_smtp_from="a@x.test", alert_smtp_to="b@x.test, c@x.test",
    )  # fmt: skip
    receivers = receivers_from_settings(settings)
    assert [r.name for r in receivers] == ["webhook", "slack", "pagerduty", "email"]
    assert receivers[-1].to == ["b@x.test", "c@x.test"]  # type: ignore[attr-defined]
    assert alerting_configured(dbsight.Settings(alertmanager_url="http://127.0.0.1:9093"))
    # e-mail needs its three settings
    with pytest.raises(ConfigError, match="go together"):
        dbsight.Settings(alert_smtp_host="127.0.0.1")
    with pytest.raises(ConfigError, match="e-mail addresses"):
        dbsight.Settings(alert_smtp_host="h", alert_smtp_from="a@x.test", alert_smtp_to="ops")


def test_bad_settings_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBSIGHT_ALERT_WEBHOOK_URL", "hooks.example.com/x")
    with pytest.raises(ConfigError, match="DBSIGHT_ALERT_WEBHOOK_URL"):
        dbsight.Settings()
    monkeypatch.delenv("DBSIGHT_ALERT_WEBHOOK_URL")
    monkeypatch.setenv("DBSIGHT_ALERT_SLOW_QUERY_MS", "0")
    with pytest.raises(ConfigError, match="DBSIGHT_ALERT_SLOW_QUERY_MS"):
        dbsight.Settings()
