"""The replay tests share one captured workload and its database copies (replay_workload)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from replay_workload import Captured, captured_workload

from dbsight.testing._servers import PgServer


@pytest.fixture(scope="package")
def captured(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Captured]:
    yield from captured_workload(pg_server, tmp_path_factory)
