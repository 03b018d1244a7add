"""The bounded LRU map behind the masked-text (second-level) cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruMap(Generic[K, V]):
    """A thread-safe, size-bounded LRU mapping (``maxsize`` 0 disables it)."""

    __slots__ = ("_data", "_lock", "maxsize", "hits", "misses")

    def __init__(self, maxsize: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        # no lock: a lookup and a move are each atomic (OrderedDict is C); an entry put
        # out meanwhile by another thread is simply not moved (the counters are a guide)
        data = self._data
        value = data.get(key)
        if value is None:
            self.misses += 1
            return None
        try:
            data.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._data) > max(maxsize, 0):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)
