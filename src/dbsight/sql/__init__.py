"""SQL text analysis: normalized text, fingerprint, operation, tables, read-only.

    from dbsight.sql import analyze
    info = analyze("SELECT * FROM users WHERE id = 42")
    info.normalized   # 'SELECT * FROM users WHERE id = $1'
    info.read_only    # True: may go to a replica
"""

from ._analyze import (
    CacheInfo,
    analyze,
    cache_info,
    clear_cache,
    mask_literals,
    set_cache_size,
    warm_up,
    warmed,
)
from ._dialects import DIALECT_NAMES
from ._info import Operation, SqlInfo

__all__ = [
    "DIALECT_NAMES",
    "CacheInfo",
    "Operation",
    "SqlInfo",
    "analyze",
    "cache_info",
    "clear_cache",
    "mask_literals",
    "set_cache_size",
    "warm_up",
    "warmed",
]
