"""``dbsight alerts export|list`` as a user runs them (a subprocess), and the Alertmanager
configuration through the real amtool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dbsight.alerting import Thresholds, all_alerts, build_rules


def dbsight(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbsight.cli", "alerts", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60)  # fmt: skip


def test_export_writes_the_rule_file_to_stdout_or_a_file(tmp_path: Path) -> None:
    to_stdout = dbsight("export")
    assert to_stdout.returncode == 0, to_stdout.stderr
    to_file = dbsight("export", "-o", str(tmp_path / "rules.yml"))
    assert to_file.returncode == 0 and to_file.stdout == ""
    assert (tmp_path / "rules.yml").read_text() == to_stdout.stdout
    data = yaml.safe_load(to_stdout.stdout)
    alerts = [r for g in data["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) == len(all_alerts(build_rules()))
    assert all(r["annotations"]["runbook_url"].startswith("docs/runbooks.md#") for r in alerts)


def test_flags_and_config_reach_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text("slo_availability = 0.995\ndb_latency_p95_s = 0.25\n")
    result = dbsight("export", "--config", str(config), "--set", "slo_latency_ms=250",
                     "--set", 'target_jobs=["api", "proxy"]', "--service-label", "svc",
                     "--runbook-base", "https://runbooks.example.internal/dbsight")  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert 'le="0.25"' in text and "> 0.25\n" in text or "> 0.25" in text
    assert "dbsight:http_errors:ratio_rate1h > 0.072" in text  # 14.4 x 0.005
    assert 'up{job=~"api|proxy"} == 0' in text
    assert "sum by (svc)" in text and "sum by (job)" not in text
    assert "runbook_url: https://runbooks.example.internal/dbsight#dbsighttargetdown" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "slo_latency_ms=300"], "pick one of 5, 10, 25"),
        (["--set", "nonsense=1"], "nonsense: not a threshold dbsight knows"),
        (["--set", "novalue"], "--set 'novalue': expected NAME=VALUE"),
        (["--slo-availability", "0.5"], "slo_availability: 0.5 leaves a budget"),
        (["--config", "/nonexistent/alerts.toml"], "No such file"),
        (["--alertmanager-config", "am.yml", "--critical-url", "ftp://x"], "--critical-url"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    for command in (["export"], ["list"]) if "--critical-url" not in args else (["export"],):
        result = dbsight(*command, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert result.stderr.startswith("dbsight alerts: ") and result.stderr.count("\n") == 1
        assert result.stdout == ""


def test_an_unwritable_output_is_exit_1(tmp_path: Path) -> None:
    result = dbsight("export", "-o", str(tmp_path / "missing-dir" / "rules.yml"))
    assert result.returncode == 1
    assert result.stderr.startswith("dbsight alerts: cannot write")
    assert result.stderr.count("\n") == 1


def test_list_shows_every_alert_with_its_threshold() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dbsight.cli", "alerts", "list", "--set", "db_latency_p95_s=0.25"],
        capture_output=True, text=True, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["alert", "severity", "for", "threshold", "summary"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == len(all_alerts(build_rules()))
    assert ["DbsightDatabaseLatencyHigh", "warning", "10m", ">", "250", "ms"] == rows[
        [r[0] for r in rows].index("DbsightDatabaseLatencyHigh")
    ][:6]
    assert any(r[:3] == ["DbsightHTTPAvailabilityBudgetBurn", "window=1h", "critical"]
               for r in rows)  # fmt: skip


def test_cli_defaults_shown_are_the_thresholds_defaults() -> None:
    import typer.main

    from dbsight import cli

    group = typer.main.get_command(cli.app).commands["alerts"]  # type: ignore[attr-defined]
    export = group.commands["export"]
    shown = {p.name: p.show_default for p in export.params}
    defaults = Thresholds()
    assert shown["slo_availability"] == f"{defaults.slo_availability:g}"
    assert shown["slo_latency_ms"] == f"{defaults.slo_latency_ms:g}"
    assert shown["slo_latency_target"] == f"{defaults.slo_latency_target:g}"
    assert shown["service_label"] == defaults.service_label


def _routes(amtool: Path, config: Path, *labels: str) -> str:
    result = subprocess.run(
        [str(amtool), "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_alertmanager_config_passes_amtool_and_routes_by_severity(
    amtool: Path, tmp_path: Path
) -> None:
    config = tmp_path / "alertmanager.yml"
    result = dbsight("export", "-o", str(tmp_path / "rules.yml"),
                     "--alertmanager-config", str(config),
                     "--critical-url", "http://127.0.0.1:9095/page",
                     "--warning-url", "http://127.0.0.1:9095/ticket")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "receiver(s) info have no URL" in result.stderr
    check = subprocess.run([str(amtool), "check-config", str(config)],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout and "3 inhibit rules" in check.stdout
    for severity in ("critical", "warning", "info"):
        labels = ("alertname=DbsightHTTPLatencyHigh", "job=api", f"severity={severity}")
        assert _routes(amtool, config, *labels) == severity
    routing = yaml.safe_load(config.read_text())
    assert routing["route"]["group_by"] == ["alertname", "job"]
    receivers = {r["name"]: r for r in routing["receivers"]}
    assert receivers["critical"]["webhook_configs"][0]["url"] == "http://127.0.0.1:9095/page"
    assert "webhook_configs" not in receivers["info"]
    inhibit = routing["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"] == ["alertname", "job"]


def test_alertmanager_config_groups_by_the_service_label(amtool: Path, tmp_path: Path) -> None:
    config = tmp_path / "am.yml"
    result = dbsight("export", "--service-label", "service_name",
                     "--alertmanager-config", str(config))  # fmt: skip
    assert result.returncode == 0, result.stderr
    check = subprocess.run([str(amtool), "check-config", str(config)],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    routing = yaml.safe_load(config.read_text())
    assert routing["route"]["group_by"] == ["alertname", "service_name"]
    assert all(rule["equal"] == ["alertname", "service_name"] for rule in routing["inhibit_rules"])
