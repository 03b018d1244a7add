"""Connection pools that instruments know about, read only when metrics are scraped.

An instrument registers a reader per pool (a function returning idle and used counts);
the Prometheus sink calls the readers at scrape time, so pools cost nothing per query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("dbsight")

PoolReader = Callable[[], "PoolUsage"]


@dataclass(slots=True, frozen=True)
class PoolUsage:
    idle: int
    used: int
    max_size: int | None = None


class PoolRegistry:
    def __init__(self) -> None:
        self._readers: dict[str, PoolReader] = {}
        self._lock = threading.Lock()

    def register(self, name: str, reader: PoolReader) -> str:
        """Register a pool under a unique name (``name``, ``name-2`` ...); returns the name used."""
        with self._lock:
            unique, n = name, 1
            while unique in self._readers:
                n += 1
                unique = f"{name}-{n}"
            self._readers[unique] = reader
            return unique

    def unregister(self, name: str) -> None:
        with self._lock:
            self._readers.pop(name, None)

    def read(self) -> dict[str, PoolUsage]:
        """Current usage of every registered pool; a reader that fails is skipped."""
        with self._lock:
            readers = list(self._readers.items())
        usage: dict[str, PoolUsage] = {}
        for name, reader in readers:
            try:
                usage[name] = reader()
            except Exception:  # a closed or broken pool must not break a scrape
                logger.debug("dbsight: reading pool %s failed", name, exc_info=True)
        return usage


pools = PoolRegistry()
