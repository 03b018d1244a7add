"""The files in deploy/ that dbsight's commands export (alert rules, Alertmanager routing,
Grafana dashboards, the PrometheusRule's groups) are exactly what they export today:
scripts/gen_deploy.py --check fails on any drift, and regenerating repairs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from dbsight.dashboards import all_dashboards

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "scripts" / "gen_deploy.py"


def _gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_committed_files_are_what_dbsight_exports() -> None:
    done = _gen("--check")
    assert done.returncode == 0, done.stderr


def test_rule_file_is_the_cli_output(deploy_dir: Path, tmp_path: Path) -> None:
    # independently of the script: the dbsight command itself, run as a user would
    out = tmp_path / "rules.yml"
    am = tmp_path / "am.yml"
    subprocess.run([sys.executable, "-c", "from dbsight.cli import main; main()", "alerts",
                    "export", "-o", str(out), "--alertmanager-config", str(am)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    assert (deploy_dir / "prometheus/rules/dbsight-rules.yml").read_text() == out.read_text()
    assert (deploy_dir / "alertmanager/alertmanager.yml").read_text() == am.read_text()


def test_prometheus_rule_groups_are_the_rule_file_groups(deploy_dir: Path) -> None:
    rules = yaml.safe_load((deploy_dir / "prometheus/rules/dbsight-rules.yml").read_text())
    manifest = yaml.safe_load((deploy_dir / "k8s/prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == rules["groups"]
    assert sum(len(group["rules"]) for group in rules["groups"]) > 40


def test_every_dashboard_is_provisioned(deploy_dir: Path) -> None:
    files = sorted(p.name for p in (deploy_dir / "grafana/dashboards").glob("*.json"))
    assert files == sorted(f"{d.uid}.json" for d in all_dashboards())
    for name in files:
        dashboard = json.loads((deploy_dir / "grafana/dashboards" / name).read_text())
        assert dashboard["uid"] == name.removesuffix(".json")


def test_check_names_a_drifted_file_and_regenerating_repairs_it(deploy_dir: Path,
                                                              tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(deploy_dir, copy)
    dashboard = copy / "grafana/dashboards/dbsight-proxy.json"
    dashboard.write_text(dashboard.read_text().replace('"title"', '"Title"', 1))
    (copy / "alertmanager/alertmanager.yml").unlink()
    (copy / "grafana/dashboards/dbsight-retired.json").write_text("{}\n")

    done = _gen("--check", "--deploy-dir", str(copy))
    assert done.returncode == 1
    assert "dbsight-proxy.json differs" in done.stderr
    assert "alertmanager.yml is missing" in done.stderr
    assert "dbsight-retired.json is no longer exported" in done.stderr

    done = _gen("--deploy-dir", str(copy))
    assert done.returncode == 0, done.stderr
    assert not (copy / "grafana/dashboards/dbsight-retired.json").exists()
    # repaired: the same files as the repository's, which the first test found current
    for name in ("grafana/dashboards/dbsight-proxy.json", "alertmanager/alertmanager.yml"):
        assert (copy / name).read_text() == (deploy_dir / name).read_text()
    assert "dbsight-service.json" not in done.stdout  # what was right is left alone
