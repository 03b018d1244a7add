"""The dashboards as Grafana reads them: ids, grid, variables, annotations, every expression
valid PromQL over metrics dbsight exposes; `dbsight dashboard export`'s files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import promql_parser
import pytest
from dashboard_checks import (
    LABEL_VALUES,
    exported,
    exposed_names,
    metric_names,
    panel_expressions,
)
from typer.testing import CliRunner

from dbsight.cli import app as cli
from dbsight.dashboards import ALERT_ANNOTATION_EXPR, Panel, Row, Target, grid


def test_three_dashboards_with_stable_uids() -> None:
    documents = exported()
    assert [d["uid"] for d in documents] == ["dbsight-service", "dbsight-database", "dbsight-proxy"]
    assert exported() == documents  # generated the same way each time


def test_service_overview_has_the_twelve_panels() -> None:
    service = exported()[0]
    titles = [p["title"] for p in service["panels"] if p["type"] != "row"]
    titles.remove("Cache latency (p95)")  # the ones added to the twelve
    titles.remove("Share of request time in the database")
    assert titles == [
        "Request rate", "Request latency (p50 / p95 / p99)", "Error rate (5xx)",
        "Active requests", "Database latency (p50 / p95 / p99)", "Slow queries",
        "External API latency (p95)", "External API errors", "Cache hit ratio",
        "Cache operations", "Background work duration (p95)", "Background work errors",
    ]  # fmt: skip


@pytest.mark.parametrize("document", exported(), ids=lambda d: d["uid"])
def test_panel_ids_are_unique(document: dict) -> None:
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)


@pytest.mark.parametrize("document", exported(), ids=lambda d: d["uid"])
def test_grid_positions_fit_24_columns_without_overlap(document: dict) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in document["panels"]]
    for title, pos in boxes:
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0, title
        assert pos["x"] + pos["w"] <= 24, title
    for (a, pa), (b, pb) in itertools.combinations(boxes, 2):
        apart = (
            pa["x"] + pa["w"] <= pb["x"] or pb["x"] + pb["w"] <= pa["x"]
            or pa["y"] + pa["h"] <= pb["y"] or pb["y"] + pb["h"] <= pa["y"]
        )  # fmt: skip
        assert apart, f"{a!r} and {b!r} overlap"


def test_grid_wraps_and_rows_take_a_line() -> None:
    wide = Panel("a", (Target("up"),), "", width=16, height=5)
    narrow = Panel("b", (Target("up"),), "", width=12, height=3)
    placed = grid([wide, narrow, Row("r"), narrow])
    assert [(p.x, p.y) for p in placed] == [(0, 0), (0, 5), (0, 8), (0, 9)]
    with pytest.raises(ValueError, match="width"):
        grid([Panel("c", (Target("up"),), "", width=25)])


@pytest.mark.parametrize("document", exported(), ids=lambda d: d["uid"])
def test_variables_refresh_and_annotations(document: dict) -> None:
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    service = variables["service"]
    assert service["type"] == "query" and "job)" in service["definition"]
    assert service["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    if document["uid"] != "dbsight-proxy":
        assert "route" in variables
    assert document["refresh"] == "30s"
    assert document["schemaVersion"] >= 38  # Grafana 10 and 11
    alerts = [a for a in document["annotations"]["list"] if a.get("expr")]
    assert [a["expr"] for a in alerts] == [ALERT_ANNOTATION_EXPR]
    for panel in document["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], panel["title"]


def test_every_expression_parses_as_promql() -> None:
    expressions = panel_expressions()
    assert len(expressions) > 40
    for expression in expressions:
        assert "$__rate_interval" in expression.expr or "rate(" not in expression.expr
        promql_parser.parse(expression.substituted())  # raises on a syntax error
    promql_parser.parse(ALERT_ANNOTATION_EXPR)
    for document in exported():
        for variable in document["templating"]["list"][1:]:
            match = LABEL_VALUES.match(variable["definition"])
            assert match, variable["definition"]
            promql_parser.parse(match["selector"].replace("$service", ".*"))


def test_every_metric_is_one_dbsight_exposes() -> None:
    exposed = exposed_names()
    assert "http_server_requests_total" in exposed and "proxy_routed_total" in exposed
    used: set[str] = set()
    for expression in panel_expressions():
        names = metric_names(expression.substituted())
        assert names, expression
        assert names <= exposed, f"{expression.panel}: {names - exposed} not in docs/metrics.md"
        used |= names
    # every documented family shows on some dashboard (histograms by their buckets)
    assert {n for n in exposed - used if not n.endswith(("_sum", "_count"))} == set()


def test_export_writes_one_file_per_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "grafana" / "dashboards"
    result = CliRunner().invoke(cli, ["dashboard", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["dbsight-database.json", "dbsight-proxy.json", "dbsight-service.json"]
    assert result.output.split() == [str(out / name) for name in
                                     ("dbsight-service.json", "dbsight-database.json",
                                      "dbsight-proxy.json")]  # fmt: skip
    for document in exported():
        assert json.loads((out / f"{document['uid']}.json").read_text()) == document


def test_export_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["dashboard", "export", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "cannot write to" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["dashboard", "export"])
    assert result.exit_code == 2  # --out is required
