"""Connection pools that instruments know about, read only when metrics are scraped.

An instrument registers a reader per pool (a function returning idle and used counts, and
the waits for a connection that timed out when the instrument can see them); the Prometheus
sink calls the readers at scrape time, so pools cost nothing per query.
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
    """A pool's connections now; ``timeouts`` counts (since it was instrumented, or since
    the pool's own statistics began) the callers that waited for a connection and got none
    in time, None when the instrument cannot see them."""

    idle: int
    used: int
    max_size: int | None = None
    timeouts: int | None = None


class TimeoutCounter:
    """Waits for a pool connection that timed out, counted by an instrument's wrapper of the
    pool's acquire and read by the pool's reader (a plain int: with the GIL one ``+= 1``
    from the wrapper cannot be lost, and timeouts are rare)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


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
