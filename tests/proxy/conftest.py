from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from wire_messages import Recorded

import dbsight


@pytest.fixture
def recorded(fresh_runtime: Any) -> Iterator[Recorded]:
    """Every statement dbsight records meanwhile (tracing off), in order."""
    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    observer = Recorded()
    dbsight.add_observer(observer)
    yield observer
    dbsight.remove_observer(observer)
