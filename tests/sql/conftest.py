"""Shared helpers for the dbsight.sql tests (no database server needed)."""

from __future__ import annotations

import pytest

from dbsight.sql import clear_cache, set_cache_size
from dbsight.sql._analyze import DEFAULT_CACHE_SIZE


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Every test starts with empty caches of the default size."""
    set_cache_size(DEFAULT_CACHE_SIZE)
    clear_cache()
    yield
    set_cache_size(DEFAULT_CACHE_SIZE)
