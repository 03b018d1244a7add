"""Regenerate the files in deploy/ that dbsight's own commands export, so they never drift:

    deploy/prometheus/rules/dbsight-rules.yml     dbsight alerts export
    deploy/alertmanager/alertmanager.yml          dbsight alerts export --alertmanager-config
    deploy/grafana/dashboards/*.json              dbsight dashboard export
    deploy/k8s/prometheusrule.yaml                the same rule groups, as a PrometheusRule

    .venv/bin/python scripts/gen_deploy.py            # (or ./dev gen-deploy) write them
    .venv/bin/python scripts/gen_deploy.py --check    # exit 1, naming each, if one differs

The commands run as a user would run them (a subprocess of `dbsight`), so what is
committed is byte for byte what `dbsight alerts export` and `dbsight dashboard export` write.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# the generated files, relative to deploy/
RULES = Path("prometheus/rules/dbsight-rules.yml")
ALERTMANAGER = Path("alertmanager/alertmanager.yml")
DASHBOARDS = Path("grafana/dashboards")
PROMETHEUS_RULE = Path("k8s/prometheusrule.yaml")

# `dbsight ARGS` with this interpreter (the venv's), whether or not its scripts are on PATH
_DBSIGHT = [sys.executable, "-c", "from dbsight.cli import main; main()"]

_PROMETHEUS_RULE_HEADER = (
    "# dbsight's alert and recording rules for prometheus-operator users (a PrometheusRule):\n"
    "# spec.groups are exactly the groups of `dbsight alerts export` (scripts/gen_deploy.py).\n"
)


def _run(*args: str) -> None:
    done = subprocess.run([*_DBSIGHT, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"dbsight {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def prometheus_rule(rules_text: str) -> str:
    """The PrometheusRule manifest whose spec.groups are the rule file's groups."""
    from dbsight.alerting import to_yaml

    groups = yaml.safe_load(rules_text)["groups"]
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "dbsight",
            "labels": {"app.kubernetes.io/name": "dbsight", "app.kubernetes.io/part-of": "dbsight",
                       "release": "prometheus"},
        },
        "spec": {"groups": groups},
    }  # fmt: skip
    return to_yaml(manifest, _PROMETHEUS_RULE_HEADER)


def render() -> dict[Path, str]:
    """Every generated file (its path relative to deploy/) and the text it must have."""
    with tempfile.TemporaryDirectory(prefix="dbsight-gen-deploy-") as scratch:
        tmp = Path(scratch)
        _run("alerts", "export", "-o", str(tmp / "rules.yml"),
             "--alertmanager-config", str(tmp / "alertmanager.yml"))  # fmt: skip
        _run("dashboard", "export", "--out", str(tmp / "dashboards"))
        rules = (tmp / "rules.yml").read_text(encoding="utf-8")
        files: dict[Path, str] = {
            RULES: rules,
            ALERTMANAGER: (tmp / "alertmanager.yml").read_text(encoding="utf-8"),
            PROMETHEUS_RULE: prometheus_rule(rules),
        }
        for path in sorted((tmp / "dashboards").glob("*.json")):
            files[DASHBOARDS / path.name] = path.read_text(encoding="utf-8")
    return files


def stale(deploy: Path, files: dict[Path, str]) -> list[str]:
    """What in ``deploy`` differs from ``files``: missing or changed files, and dashboards
    no longer exported."""
    problems = []
    for name, text in files.items():
        path = deploy / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} differs from what dbsight exports")
    for path in sorted((deploy / DASHBOARDS).glob("*.json")):
        if path.relative_to(deploy) not in files:
            problems.append(f"{path} is no longer exported")
    return problems


def write(deploy: Path, files: dict[Path, str]) -> list[Path]:
    """Bring ``deploy`` to ``files`` (and remove dashboards no longer exported); returns
    what changed."""
    changed = []
    for path in sorted((deploy / DASHBOARDS).glob("*.json")):
        if path.relative_to(deploy) not in files:
            path.unlink()
            changed.append(path)
    for name, text in files.items():
        path = deploy / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 if a file is not what dbsight exports",
    )  # fmt: skip
    parser.add_argument(
        "--deploy-dir", type=Path, default=DEPLOY, metavar="DIR",
        help="the deploy/ folder to write or check (default: the repository's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        problems = stale(args.deploy_dir, files)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: ./dev gen-deploy (or .venv/bin/python scripts/gen_deploy.py)",
                  file=sys.stderr)  # fmt: skip
        return 1 if problems else 0
    for path in write(args.deploy_dir, files):
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
