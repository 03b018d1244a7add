"""Grafana dashboards for dbsight's metrics, generated from typed Python.

    from dbsight.dashboards import all_dashboards, export_dashboards
    export_dashboards(Path("grafana/dashboards"))     # dbsight dashboard export --out DIR

Three dashboards (stable uids): ``dbsight-service`` (a service's overview),
``dbsight-database`` (statements, slow ones, N+1, pools) and ``dbsight-proxy``. Each has a
``$datasource`` variable (Prometheus), ``$service`` (the scrape ``job``), alert annotations
from ``ALERTS{alertstate="firing"}`` and a 30 s refresh.
"""

from ._database import database_dashboard
from ._export import all_dashboards, export_dashboards
from ._model import (
    ALERT_ANNOTATION_EXPR,
    GRID_COLUMNS,
    Dashboard,
    Panel,
    Row,
    Target,
    Variable,
    grid,
)
from ._proxy import proxy_dashboard
from ._service import service_dashboard

__all__ = [
    "ALERT_ANNOTATION_EXPR",
    "GRID_COLUMNS",
    "Dashboard",
    "Panel",
    "Row",
    "Target",
    "Variable",
    "all_dashboards",
    "database_dashboard",
    "export_dashboards",
    "grid",
    "proxy_dashboard",
    "service_dashboard",
]
