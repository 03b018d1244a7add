"""Writing the dashboards: one JSON file per dashboard, named after its uid, in a directory
Grafana can provision from (or import one by one)."""

from __future__ import annotations

import json
from pathlib import Path

from ._database import database_dashboard
from ._model import Dashboard
from ._proxy import proxy_dashboard
from ._service import service_dashboard


def all_dashboards() -> tuple[Dashboard, ...]:
    """Every dashboard dbsight ships, service overview first."""
    return (service_dashboard(), database_dashboard(), proxy_dashboard())


def export_dashboards(directory: Path) -> list[Path]:
    """Write ``<uid>.json`` for each dashboard into ``directory`` (made when missing);
    returns the files written. Existing files of the same names are replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in all_dashboards():
        path = directory / f"{dashboard.uid}.json"
        text = json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
