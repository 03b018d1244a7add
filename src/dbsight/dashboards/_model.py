"""Grafana dashboards as typed values: `Target` (one PromQL query), `Panel`, `Variable`,
`Dashboard`, and `grid()`, the layout helper that places panels on Grafana's 24 columns.

Each dashboard module builds a `Dashboard` of these; `Dashboard.to_json()` is the document
Grafana imports (or provisions from a directory). The JSON is plain data: no Grafana client
library, so what the tests check is exactly what Grafana reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

# Grafana 10.x and 11.x both import this schema version without a migration prompt.
SCHEMA_VERSION = 39
GRID_COLUMNS = 24
REFRESH = "30s"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The window of every rate(): Grafana's own, at least four scrape intervals wide.
RATE = "$__rate_interval"

PanelKind = Literal["timeseries", "stat"]


@dataclass(frozen=True, slots=True)
class Target:
    """One PromQL expression of a panel and the legend its series get."""

    expr: str
    legend: str = ""

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {
            "datasource": DATASOURCE,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": True,
            "refId": ref_id,
        }


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel; ``width``/``height`` in grid units (24 columns wide), placed by `grid()`.

    ``quiet`` says why the panel may show no data on a healthy system (a breaker that never
    opened): the panel's description tells the reader so, and the tests list it as such.
    """

    title: str
    targets: tuple[Target, ...]
    description: str
    unit: str = "short"
    kind: PanelKind = "timeseries"
    width: int = 12
    height: int = 8
    stack: bool = False
    min: float | None = 0
    max: float | None = None
    quiet: str | None = None

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        description = self.description
        if self.quiet:
            description += f" Empty until it happens: {self.quiet}"
        defaults: dict[str, Any] = {"unit": self.unit}
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"mode": "normal" if self.stack else "none", "group": "A"},
            }
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": _options(self.kind),
            "targets": [
                target.to_json(chr(ord("A") + number)) for number, target in enumerate(self.targets)
            ],
        }


def _options(kind: PanelKind) -> dict[str, Any]:
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


@dataclass(frozen=True, slots=True)
class Row:
    """A collapsible-looking heading across the full width (kept expanded)."""

    title: str


@dataclass(frozen=True, slots=True)
class Placed:
    """A panel or row with its position, as `grid()` laid it out."""

    item: Panel | Row
    x: int
    y: int
    width: int
    height: int


def grid(items: Iterable[Panel | Row]) -> list[Placed]:
    """Left to right, wrapping at 24 columns; a row starts a new line of its own. A line is
    as tall as its tallest panel, so panels never overlap."""
    placed: list[Placed] = []
    x = y = line_height = 0
    for item in items:
        if isinstance(item, Row):
            y += line_height
            placed.append(Placed(item, 0, y, GRID_COLUMNS, 1))
            x, y, line_height = 0, y + 1, 0
            continue
        if not 1 <= item.width <= GRID_COLUMNS:
            raise ValueError(f"panel {item.title!r}: width must be 1 to {GRID_COLUMNS}")
        if x + item.width > GRID_COLUMNS:
            x, y, line_height = 0, y + line_height, 0
        placed.append(Placed(item, x, y, item.width, item.height))
        x += item.width
        line_height = max(line_height, item.height)
    return placed


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable: a query of label values (``$service``, ``$route``) or the data
    source picker (``$datasource``)."""

    name: str
    label: str
    query: str = ""  # label_values(...) for a query variable
    datasource_type: str | None = None  # set: a data source variable of that type
    include_all: bool = True

    def to_json(self) -> dict[str, Any]:
        if self.datasource_type is not None:
            return {
                "name": self.name,
                "label": self.label,
                "type": "datasource",
                "query": self.datasource_type,
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            }
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": self.query,  # Grafana 10/11 turn a string into their query object
            "definition": self.query,
            "current": {},
            "hide": 0,
            "includeAll": self.include_all,
            "allValue": ".*",  # the expressions match with =~, so All matches every value
            "multi": True,
            "refresh": 2,  # on time range change: new services and routes show up
            "regex": "",
            "sort": 1,
            "options": [],
        }


DATASOURCE_VARIABLE = Variable("datasource", "Data source", datasource_type="prometheus")

# Alert annotations: every firing alert of the data source, as Prometheus' ALERTS series.
ALERT_ANNOTATION_EXPR = 'ALERTS{alertstate="firing"}'


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A whole dashboard; ``uid`` is stable, so a re-import updates it instead of copying."""

    uid: str
    title: str
    description: str
    items: tuple[Panel | Row, ...]
    variables: tuple[Variable, ...]
    tags: tuple[str, ...] = ("dbsight",)

    @property
    def panels(self) -> list[Panel]:
        return [item for item in self.items if isinstance(item, Panel)]

    def to_json(self) -> dict[str, Any]:
        panels = []
        for number, placed in enumerate(grid(self.items), 1):
            if isinstance(placed.item, Row):
                panels.append({
                    "id": number, "type": "row", "title": placed.item.title, "collapsed": False,
                    "gridPos": {"x": 0, "y": placed.y, "w": GRID_COLUMNS, "h": 1},
                    "panels": [],
                })  # fmt: skip
            else:
                panels.append(placed.item.to_json(number, placed.x, placed.y))
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,  # shared crosshair: a spike lines up across panels
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": REFRESH,
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
            "templating": {
                "list": [DATASOURCE_VARIABLE.to_json()] + [v.to_json() for v in self.variables]
            },
            "annotations": {"list": [_builtin_annotation(), _alert_annotation()]},
            "links": [
                {
                    "type": "dashboards",
                    "title": "dbsight",
                    "tags": ["dbsight"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                },
            ],
            "panels": panels,
        }


def _builtin_annotation() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _alert_annotation() -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": ALERT_ANNOTATION_EXPR,
        "iconColor": "red",
        "name": "Firing alerts",
        "step": "30s",
        "titleFormat": "{{alertname}}",
        "tagKeys": "severity,alertname",
        "textFormat": "{{alertname}} ({{severity}})",
        "useValueForTime": False,
    }
