"""What the report tests share: the running shops of conftest.py (a module of its own, so
that the tests can import it by a name no other test directory's conftest also has)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dbsight.testing.proxy import RunningProxy


@dataclass
class Shops:
    urls: list[str]  # shop-a (direct), shop-b (through the proxy)
    capture: Path
    dsn: str
    proxy: RunningProxy
