"""What the dashboard tests share: every expression of the exported dashboards (panels,
annotations, variables), template variables substituted, and the metric names they read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser

from dbsight.dashboards import all_dashboards

DOCS_METRICS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# What the tests put for Grafana's own variable: a window of ten 1 s scrapes.
RATE_WINDOW = "10s"
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Expression:
    dashboard: str  # uid
    panel: str  # title
    expr: str  # as exported, with $variables

    def substituted(self, service: str = ".*", route: str = ".*") -> str:
        return (
            self.expr.replace("$__rate_interval", RATE_WINDOW)
            .replace("$service", service)
            .replace("$route", route)
        )


def exported() -> list[dict[str, Any]]:
    return [dashboard.to_json() for dashboard in all_dashboards()]


def panel_expressions() -> list[Expression]:
    found = []
    for document in exported():
        for panel in document["panels"]:
            for target in panel.get("targets", ()):
                found.append(Expression(document["uid"], panel["title"], target["expr"]))
    return found


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exposed_names() -> set[str]:
    """Every series name docs/metrics.md's families give (a histogram's _bucket, _sum and
    _count; a counter as exposed, with _total)."""
    names: set[str] = set()
    for line in DOCS_METRICS.read_text().splitlines():
        match = re.match(r"^\| `([a-z_]+)` \| (counter|gauge|histogram) \|", line)
        if not match:
            continue
        name, kind = match.groups()
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return names
