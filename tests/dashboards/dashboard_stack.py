"""The names and the handle the dashboard tests share with their fixture (conftest.py)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from dbsight.testing.proxy import RunningProxy

TOKEN = "dashboards-admin-token"
SERVICE_JOB = "shop"
PROXY_JOB = "proxy"


@dataclass
class Stack:
    prometheus: str  # base URL of Prometheus' HTTP API
    service: str  # base URL of the instrumented service
    admin: str  # base URL of the proxy's admin port (bearer TOKEN)
    proxy: RunningProxy

    def query(self, expr: str) -> dict[str, Any]:
        """The answer of /api/v1/query for ``expr`` (status success asserted)."""
        url = self.prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            document: dict[str, Any] = json.load(response)
        assert document["status"] == "success", document
        return document["data"]

    def label_values(self, label: str, match: str) -> list[str]:
        query = urllib.parse.urlencode({"match[]": match})
        url = f"{self.prometheus}/api/v1/label/{label}/values?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.load(response)["data"])
