"""The exported rules through the real promtool: ``check rules`` on what ``dbsight alerts
export`` writes, and ``test rules`` with a unit test for every alert (generated from the typed
rules by `_alert_promtool.unit_tests`), run once per rule group in one promtool invocation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _alert_promtool import unit_tests

from dbsight.alerting import Thresholds, all_alerts, build_rules, rule_file, to_yaml

CUSTOM = Thresholds(
    service_label="service_name",
    target_jobs=("api", "proxy"),
    http_latency_p95_warning_s=0.25,
    http_error_ratio_critical=0.1,
    cache_hit_ratio_warning=0.8,
    db_latency_p95_s=0.25,
    slow_queries_per_s=2,
    n_plus_one_per_s=0.5,
    pool_saturation=0.75,
    function_errors_per_10m=3,
    function_duration_p95_s=2.5,
    pool_timeouts_per_5m=5,
    deadlocks_per_5m=2,
    serialization_failures_per_s=0.5,
    resource_errors_per_5m=1,
    replica_lag_s=2.5,
    throughput_offset="1h",
    throughput_drop=0.8,
    slo_availability=0.99,
    slo_latency_ms=250,
    slo_latency_target=0.95,
)


def export(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "rules.yml"
    subprocess.run(
        [sys.executable, "-m", "dbsight.cli", "alerts", "export", "-o", str(out), *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out


def run_unit_tests(promtool: Path, directory: Path, rules: Thresholds, tests: Thresholds,
                   only: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Rules from ``rules`` and unit tests from ``tests``, a file pair per rule group."""
    test_files = []
    rule_groups = {group.name: group for group in build_rules(rules)}
    for group in build_rules(tests):
        if only and group.name != only:
            continue
        rule_name = f"{group.name}.rules.yml"
        (directory / rule_name).write_text(
            to_yaml(rule_file((rule_groups[group.name],), annotations=False))
        )
        test_file = directory / f"{group.name}.test.yml"
        test_file.write_text(to_yaml(unit_tests(group, tests, rule_name)))
        test_files.append(str(test_file))
    return subprocess.run(
        [str(promtool), "test", "rules", *test_files], capture_output=True, text=True, timeout=120
    )


def test_exported_rule_file_passes_promtool_check(promtool: Path, tmp_path: Path) -> None:
    rules = export(tmp_path)
    result = subprocess.run([str(promtool), "check", "rules", str(rules)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    expected = sum(len(group.rules) for group in build_rules())
    assert f"SUCCESS: {expected} rules found" in result.stdout


@pytest.mark.parametrize("thresholds", [Thresholds(), CUSTOM], ids=["defaults", "custom"])
def test_every_alert_fires_at_its_threshold_after_its_for(
    promtool: Path, tmp_path: Path, thresholds: Thresholds
) -> None:
    result = run_unit_tests(promtool, tmp_path, thresholds, thresholds)
    assert result.returncode == 0, result.stdout + result.stderr
    groups = build_rules(thresholds)
    assert result.stdout.count("SUCCESS") == len(groups)
    written = sum(
        len(__import__("yaml").safe_load((tmp_path / f"{g.name}.test.yml").read_text())["tests"])
        for g in groups
    )
    assert written == 2 * len(all_alerts(groups))  # a breach and a quiet case each


@pytest.mark.parametrize(
    "changed",
    [
        {"http_latency_p95_warning_s": 2.5},  # a threshold moved
        {"cache_hit_ratio_warning": 0.6},  # a "<" threshold moved
    ],
)
def test_unit_tests_catch_a_rule_that_drifts_from_its_threshold(
    promtool: Path, tmp_path: Path, changed: dict[str, float]
) -> None:
    drifted = Thresholds(**changed)
    group = "dbsight-http" if "http" in next(iter(changed)) else "dbsight-dependencies"
    result = run_unit_tests(promtool, tmp_path, drifted, Thresholds(), only=group)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_annotations_render_with_labels_value_and_runbook(promtool: Path, tmp_path: Path) -> None:
    """The full exported file (annotations and all), for alerts whose value is exact."""
    export(tmp_path, "--runbook-base", "https://git.example.internal/ops/dbsight/runbooks.md")
    base = "https://git.example.internal/ops/dbsight/runbooks.md"
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="api",instance="10.0.0.7:8000"}', "values": "0x20"},
                    {"series": 'proxy_pool_max_size{job="proxy",pool="app@shop"}',
                     "values": "20x20"},
                    {"series": 'proxy_server_connections{job="proxy",pool="app@shop",state="used"}',
                     "values": "19x20"},
                ],  # fmt: skip
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "DbsightTargetDown",
                        "exp_alerts": [{
                            "exp_labels": {"severity": "critical", "job": "api",
                                           "instance": "10.0.0.7:8000"},
                            "exp_annotations": {
                                "summary": "api target 10.0.0.7:8000 is not reporting",
                                "description": (
                                    "Prometheus has failed to scrape 10.0.0.7:8000 (job api) "
                                    "for 5 minutes: the service or the proxy is down, or its "
                                    "metrics endpoint is unreachable."
                                ),
                                "runbook_url": f"{base}#dbsighttargetdown",
                            },
                        }],
                    },
                    {
                        "eval_time": "6m",
                        "alertname": "DbsightProxyPoolSaturated",
                        "exp_alerts": [{
                            "exp_labels": {"severity": "warning", "job": "proxy",
                                           "pool": "app@shop"},
                            "exp_annotations": {
                                "summary": "Proxy pool app@shop is nearly exhausted",
                                "description": (
                                    "95% of the server connections of proxy pool app@shop "
                                    "(proxy) have been in use for 5 minutes: clients start "
                                    "waiting for one."
                                ),
                                "runbook_url": f"{base}#dbsightproxypoolsaturated",
                            },
                        }],
                    },
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "annotations.test.yml").write_text(to_yaml(tests))
    result = subprocess.run(
        [str(promtool), "test", "rules", str(tmp_path / "annotations.test.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_short_window_ends_a_page_soon_after_the_burning_stops(
    promtool: Path, tmp_path: Path
) -> None:
    """2 % of requests fail for an hour, then none: the 1 h / 5 m page fires during it and has
    stopped 10 minutes after (its 1 h window still over 14.4 x the budget, its 5 m window
    clean), while the slower 6 h / 30 m page and the 1 d ticket, whose short windows still see
    the errors, fire."""
    group = next(g for g in build_rules() if g.name == "dbsight-slo-availability")
    (tmp_path / "slo.rules.yml").write_text(to_yaml(rule_file((group,), annotations=False)))
    labels = 'job="api",method="GET",route="/orders"'
    burn = {"alertname": "DbsightHTTPAvailabilityBudgetBurn"}

    def firing(*windows: tuple[str, str]) -> list[dict[str, dict[str, str]]]:
        return [{"exp_labels": {"job": "api", "severity": severity, "window": window}}
                for window, severity in windows]  # fmt: skip

    tests = {
        "rule_files": ["slo.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # 0.2 errors/s among 10 requests/s for 60 minutes, then no more errors
                {"series": f'http_server_requests_total{{{labels},status="500"}}',
                 "values": "0+12x60 720+0x30"},
                {"series": f'http_server_requests_total{{{labels},status="200"}}',
                 "values": "0+588x90"},
            ],
            "alert_rule_test": [
                {**burn, "eval_time": "30m",
                 "exp_alerts": firing(("1h", "critical"), ("6h", "critical"))},
                {**burn, "eval_time": "70m",
                 "exp_alerts": firing(("6h", "critical"), ("1d", "warning"))},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "slo.test.yml").write_text(to_yaml(tests))
    result = subprocess.run([str(promtool), "test", "rules", str(tmp_path / "slo.test.yml")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# Alerts on "any such event": their counters get a series with the first event, already at
# 1, which increase() alone never sees. (alert, its rule group, the series that appears)
FIRST_EVENT = [
    ("DbsightDatabaseDeadlocks", "dbsight-database",
     'db_client_errors_total{job="api",system="postgresql",operation="update",'
     'table="accounts",sqlstate="40P01",error_class="40"}',
     {"job": "api", "system": "postgresql"}),
    ("DbsightDatabaseResourceErrors", "dbsight-database",
     'db_client_errors_total{job="api",system="postgresql",operation="insert",'
     'table="events",sqlstate="53100",error_class="53"}',
     {"job": "api", "system": "postgresql", "sqlstate": "53100"}),
    ("DbsightProxyResourceErrors", "dbsight-proxy",
     'proxy_client_errors_total{job="api",sqlstate="53400"}',
     {"job": "api", "sqlstate": "53400"}),
    ("DbsightBackgroundWorkFailing", "dbsight-background-work",
     'db_client_function_errors_total{job="api",function="nightly_rollup"}',
     {"job": "api", "function": "nightly_rollup"}),
]  # fmt: skip


@pytest.mark.parametrize(("alert", "group", "series", "labels"), FIRST_EVENT,
                         ids=[case[0] for case in FIRST_EVENT])  # fmt: skip
def test_the_first_event_of_a_new_series_fires(
    promtool: Path, tmp_path: Path, alert: str, group: str, series: str,
    labels: dict[str, str],
) -> None:  # fmt: skip
    """One event 3 minutes in (the series appears at 1): firing once its ``for:`` passed, and
    quiet again once the event has left the alert's window."""
    rules = next(g for g in build_rules() if g.name == group)
    (tmp_path / "first.rules.yml").write_text(to_yaml(rule_file((rules,), annotations=False)))
    (rule,) = [a for a in rules.alerts if a.name == alert]
    window_s = 600 if alert == "DbsightBackgroundWorkFailing" else 300
    fired_at = 180 + rule.for_s + 60
    quiet_at = 180 + window_s + 120
    tests = {
        "rule_files": ["first.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": series, "values": "_x3 1x30"}],
            "alert_rule_test": [
                {"eval_time": "2m", "alertname": alert, "exp_alerts": []},
                {"eval_time": f"{fired_at}s", "alertname": alert,
                 "exp_alerts": [{"exp_labels": {"severity": rule.severity, **labels}}]},
                {"eval_time": f"{quiet_at}s", "alertname": alert, "exp_alerts": []},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "first.test.yml").write_text(to_yaml(tests))
    result = subprocess.run([str(promtool), "test", "rules", str(tmp_path / "first.test.yml")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
