"""The monitoring side of deploy/: Prometheus's configurations pass `promtool check config`
(their rule files found), Alertmanager's passes `amtool check-config`, the OpenTelemetry
Collector's pipelines name only components it defines and export to Jaeger over OTLP, and
Grafana's provisioning points at the Prometheus and the dashboards the deployment has."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-swarm.yml"])
def test_promtool_accepts_the_config_and_finds_the_rules(deploy_dir: Path, system_tool,
                                                         name: str) -> None:
    path = deploy_dir / "prometheus" / name
    # from another directory: the rule and credentials paths resolve from the file's own
    done = _run(system_tool("promtool"), "check", "config", str(path), cwd=deploy_dir.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr
    rules = _load(deploy_dir / "prometheus/rules/dbsight-rules.yml")
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in done.stdout + done.stderr


def test_promtool_rejects_a_config_whose_rules_are_missing(deploy_dir: Path, tmp_path: Path,
                                                           system_tool) -> None:
    # the check bites: the same file, with its secret beside it but not its rules
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/admin_token.txt").write_text("CHANGE_ME\n")
    copy = tmp_path / "prometheus/prometheus.yml"
    copy.write_text((deploy_dir / "prometheus/prometheus.yml").read_text()
                    .replace("rules/*.yml", "rules/dbsight-rules.yml"))  # fmt: skip
    done = _run(system_tool("promtool"), "check", "config", str(copy))
    assert done.returncode != 0
    assert "dbsight-rules.yml" in done.stdout + done.stderr


def test_prometheus_scrapes_the_service_and_proxy_and_alerts(deploy_dir: Path) -> None:
    compose = _load(deploy_dir / "compose.yaml")
    config = _load(deploy_dir / "prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["shop"]["static_configs"][0]["targets"] == ["app:8000"]
    assert jobs["dbsight-proxy"]["static_configs"][0]["targets"] == ["app:9187"]
    # "app" is the sidecar's alias in the namespace the service shares
    assert "app" in compose["services"]["app-proxy"]["networks"]["backend"]["aliases"]
    for job in ("shop", "dbsight-proxy"):
        assert jobs[job]["authorization"]["credentials_file"] == "../secrets/admin_token.txt"
    # ... which is where compose mounts the admin_token secret, relative to /etc/prometheus
    prometheus = compose["services"]["prometheus"]
    (secret,) = prometheus["secrets"]
    assert (secret["source"], secret["target"]) == ("admin_token", "/etc/secrets/admin_token.txt")
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert "alertmanager" in compose["services"]

    swarm = {job["job_name"]: job for job in
             _load(deploy_dir / "prometheus/prometheus-swarm.yml")["scrape_configs"]}  # fmt: skip
    assert swarm["shop"]["dns_sd_configs"][0]["names"] == ["tasks.app"]
    assert swarm["dbsight-proxy"]["dns_sd_configs"][0]["names"] == ["tasks.db-proxy"]


def test_amtool_accepts_the_alertmanager_config(deploy_dir: Path, system_tool) -> None:
    done = _run(system_tool("amtool"), "check-config",
                str(deploy_dir / "alertmanager/alertmanager.yml"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_amtool_rejects_a_route_to_an_unknown_receiver(deploy_dir: Path, tmp_path: Path,
                                                       system_tool) -> None:
    config = _load(deploy_dir / "alertmanager/alertmanager.yml")
    config["route"]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    assert _run(system_tool("amtool"), "check-config", str(broken)).returncode != 0


def _component_ids(section: dict[str, Any] | None) -> set[str]:
    return set(section or {})


def test_otel_collector_pipelines_use_defined_components(deploy_dir: Path) -> None:
    config = _load(deploy_dir / "otel-collector/config.yaml")
    service = config["service"]
    assert set(service.get("extensions", [])) <= _component_ids(config.get("extensions"))
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in service["pipelines"].items():
        assert name.split("/")[0] in {"traces", "metrics", "logs"}, name
        assert pipeline["receivers"] and pipeline["exporters"], name
        for kind in used:
            for component in pipeline.get(kind, []):
                assert component in _component_ids(config.get(kind)), (name, kind, component)
                used[kind].add(component)
    for kind, components in used.items():  # nothing defined and left unused
        assert components == _component_ids(config.get(kind)), kind
    # memory_limiter first, as the collector's documentation asks
    assert service["pipelines"]["traces"]["processors"][0] == "memory_limiter"


def test_otel_collector_receives_otlp_and_exports_to_jaeger(deploy_dir: Path) -> None:
    config = _load(deploy_dir / "otel-collector/config.yaml")
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    jaeger = config["exporters"]["otlp/jaeger"]
    assert jaeger["endpoint"] == "jaeger:4317"
    compose = _load(deploy_dir / "compose.yaml")
    assert compose["services"]["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    mount = "./otel-collector/config.yaml:/etc/otelcol/config.yaml:ro"
    assert mount in compose["services"]["otel-collector"]["volumes"]
    # the service and the proxy send their spans to the collector's OTLP/HTTP receiver
    for name in ("app", "app-proxy"):
        endpoint = compose["services"][name]["environment"]["DBSIGHT_OTLP_ENDPOINT"]
        assert endpoint == "http://otel-collector:4318/v1/traces"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards(deploy_dir: Path) -> None:
    compose = _load(deploy_dir / "compose.yaml")
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])

    datasources = _load(deploy_dir / "grafana/provisioning/datasources/prometheus.yml")
    assert datasources["apiVersion"] == 1
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True

    providers = _load(deploy_dir / "grafana/provisioning/dashboards/dbsight.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"

    dashboards = sorted((deploy_dir / "grafana/dashboards").glob("*.json"))
    assert len(dashboards) == 3
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        # the $datasource variable offers the provisioned Prometheus (any of its type)
        assert variables["datasource"]["query"] == prometheus["type"]

    # the Swarm stack mounts the same files where the provider looks
    stack = _load(deploy_dir / "stack.yaml")
    targets = {c["target"] for c in stack["services"]["grafana"]["configs"]}
    for path in dashboards:
        assert f"{provider['options']['path']}/{path.name}" in targets
