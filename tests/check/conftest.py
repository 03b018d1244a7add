"""Every database-check test starts and ends with no remembered failing check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbsight.check import forget_events


@pytest.fixture(autouse=True)
def _forget_events() -> Iterator[None]:
    """A test's failing checks do not resolve or repeat in another's (same process)."""
    forget_events()
    yield
    forget_events()
