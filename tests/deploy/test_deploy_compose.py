"""deploy/compose.yaml and deploy/stack.yaml: valid against the Compose Specification
(`check-jsonschema --builtin-schema vendor.compose-spec`, offline), every file they mount
or read exists, dependencies wait on real healthchecks, the sidecar shares the service's
network namespace, and the Swarm stack has what a rolling, resource-bounded deployment
needs. No Docker engine is involved."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

SERVICES = {"app", "app-proxy", "postgres-primary", "postgres-replica", "redis", "prometheus",
            "alertmanager", "grafana", "otel-collector", "jaeger"}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose(deploy_dir: Path) -> dict[str, Any]:
    return _load(deploy_dir / "compose.yaml")


@pytest.fixture(scope="module")
def stack(deploy_dir: Path) -> dict[str, Any]:
    return _load(deploy_dir / "stack.yaml")


def _check(tool: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", *map(str, files)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_compose_and_stack_follow_the_compose_spec(deploy_dir: Path, venv_tool) -> None:
    done = _check(venv_tool("check-jsonschema"), deploy_dir / "compose.yaml",
                  deploy_dir / "stack.yaml")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_misspelt_key(deploy_dir: Path, tmp_path: Path,
                                                 venv_tool) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text((deploy_dir / "compose.yaml").read_text().replace(
        "stop_grace_period: 40s", "stop_grace_periods: 40s"))  # fmt: skip
    assert _check(venv_tool("check-jsonschema"), broken).returncode != 0


def _host_files(document: dict[str, Any]) -> list[str]:
    """Every file or directory of the host the document names: bind mounts, secrets, configs."""
    paths = []
    for service in document["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                paths.append(source)
    for section in ("secrets", "configs"):
        paths += [item["file"] for item in document.get(section, {}).values() if "file" in item]
    return paths


@pytest.mark.parametrize("name", ["compose.yaml", "stack.yaml"])
def test_every_mounted_file_exists(deploy_dir: Path, name: str) -> None:
    document = _load(deploy_dir / name)
    paths = _host_files(document)
    assert len(paths) >= 8
    missing = [p for p in paths if not (deploy_dir / p).exists()]
    assert missing == []
    for service in document["services"].values():
        for key in ("secrets", "configs"):
            for item in service.get(key, []):
                source = item if isinstance(item, str) else item["source"]
                assert source in document[key], f"{key} {source} is not declared"


def test_secret_files_hold_marked_placeholders(deploy_dir: Path, compose: dict,
                                               stack: dict) -> None:
    assert compose["secrets"] == stack["secrets"]
    for secret in compose["secrets"].values():
        assert (deploy_dir / secret["file"]).read_text().strip() == "CHANGE_ME"


def test_compose_has_every_service_with_healthy_dependencies(compose: dict) -> None:
    services = compose["services"]
    assert SERVICES <= services.keys()
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if condition["condition"] == "service_healthy":
                check = services[dependency].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (name, dependency)
    assert services["app"]["depends_on"]["demo-seed"]["condition"] == (
        "service_completed_successfully")  # fmt: skip


def test_the_proxy_is_the_service_sidecar(compose: dict, deploy_dir: Path) -> None:
    services = compose["services"]
    app, proxy = services["app"], services["app-proxy"]
    assert app["network_mode"] == "service:app-proxy"
    assert app["depends_on"]["app-proxy"]["condition"] == "service_healthy"
    assert "app" in proxy["networks"]["backend"]["aliases"]
    assert app["environment"]["DBSIGHT_DEMO_DSN"].startswith("postgresql://app@127.0.0.1:5433/")
    command = " ".join(proxy["command"])
    assert "--config /etc/dbsight/proxy.toml" in command
    assert "./proxy/proxy.toml:/etc/dbsight/proxy.toml:ro" in proxy["volumes"]
    assert proxy["environment"]["HEALTHCHECK_URL"].endswith(":9187/healthz")
    assert {"8000:8000", "9187:9187"} <= set(proxy["ports"])


def test_the_replica_streams_from_the_primary(compose: dict, deploy_dir: Path) -> None:
    services = compose["services"]
    primary = " ".join(services["postgres-primary"]["command"])
    assert "wal_level=replica" in primary and "max_wal_senders" in primary
    replica = services["postgres-replica"]
    assert replica["depends_on"]["postgres-primary"]["condition"] == "service_healthy"
    script = (deploy_dir / "postgres/replica-entrypoint.sh").read_text()
    assert "pg_basebackup" in script and "--write-recovery-conf" in script
    assert '--slot "$REPLICATION_SLOT"' in script
    init = (deploy_dir / "postgres/primary-init.sh").read_text()
    assert "REPLICATION" in init and "pg_create_physical_replication_slot('replica1')" in init
    assert replica["environment"]["REPLICATION_SLOT"] == "replica1"


def test_image_build_and_app_module_argument(compose: dict, deploy_dir: Path) -> None:
    build = compose["x-app-image"]["build"]
    assert (deploy_dir / build["context"] / build["dockerfile"]).resolve() == (
        deploy_dir / "Dockerfile").resolve()  # fmt: skip
    assert build["args"]["APP_MODULE"] == "${APP_MODULE:-dbsight.demo.app:app_from_env()}"
    assert compose["services"]["app"]["environment"]["APP_MODULE"] == build["args"]["APP_MODULE"]


def test_swarm_stack_rolls_updates_within_resources_on_an_overlay(stack: dict) -> None:
    services = stack["services"]
    assert {"app", "db-proxy", "postgres-primary", "postgres-replica"} <= services.keys()
    for name in ("app", "db-proxy"):
        deploy = services[name]["deploy"]
        assert deploy["replicas"] >= 2
        assert deploy["update_config"]["order"] == "start-first"
        assert deploy["update_config"]["failure_action"] == "rollback"
        assert "parallelism" in deploy["rollback_config"]
        assert {"limits", "reservations"} <= deploy["resources"].keys()
        assert services[name]["healthcheck"]["test"]  # what start-first waits for
    for service in services.values():
        assert service["networks"] == ["backend"]
        assert "limits" in service["deploy"].get("resources", {}) or service is services[
            "demo-seed"]  # fmt: skip
    assert stack["networks"]["backend"]["driver"] == "overlay"
    # Swarm has no pods: the service reaches the proxy service over the overlay
    assert services["app"]["environment"]["DBSIGHT_DEMO_DSN"].startswith(
        "postgresql://app@db-proxy:5433/")  # fmt: skip
    assert "--listen 0.0.0.0:5433" in " ".join(services["db-proxy"]["command"])


def test_the_sidecars_proxy_toml_loads_with_the_proxy_loader(deploy_dir: Path) -> None:
    from dbsight.proxy._config import ProxyConfig

    config = ProxyConfig.load(deploy_dir / "proxy/proxy.toml")
    assert config.listen_address == ("127.0.0.1", 5433)  # the shared namespace only
    assert config.admin_address == ("0.0.0.0", 9187)  # Prometheus and the healthcheck
    assert (config.upstream_server.host, config.upstream_server.password) == (
        "postgres-primary", None)  # the password comes on the command line  # fmt: skip
    assert [r.host for r in config.replica_servers] == ["postgres-replica"]
    assert config.proxy_login  # with a replica the proxy logs in to both servers itself
    # the replica-lag alert's threshold is the proxy's own limit (docs/alerts.md)
    rules = yaml.safe_load((deploy_dir / "prometheus/rules/dbsight-rules.yml").read_text())
    lag = [r for g in rules["groups"] for r in g["rules"]
           if r.get("alert") == "DbsightReplicaLagHigh"]  # fmt: skip
    assert lag and all(r["expr"].rstrip().endswith(f"> {config.max_replica_lag_s:g}")
                       for r in lag)  # fmt: skip
