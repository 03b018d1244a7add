"""`TransactionEnd`: what the end of a pooled client's transaction tells the proxy.

- The result cache (`CacheStep`): the unit that filled it is stored, unless it failed, and
  what the transaction wrote is invalidated again (a read between the write and its commit
  may have filled it with the old rows).
- The server's breaker (`Topology.record`): a failure that is the server's fault
  (`is_backend_failure`: a lost connection, a shutdown, no resources) counts against it;
  anything else — success, or the client's bad SQL — counts for it.
- After DDL, the judges of statement texts forget what they knew: the router (a function's
  volatility, a view's relations) and the catalog reach of writes (`ReachBook`).

The session calls `TransactionEnd.tell` once per transaction, when it releases the
connection. No sockets here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ._breaker import is_backend_failure
from ._cache_step import CacheStep
from ._exchange import Exchange


class Forgets(Protocol):
    """What judges statement texts by the catalog (`Router`, `ReachBook`)."""

    def forget(self) -> None: ...


class TransactionEnd:
    """One logged-in client's transaction ends (see the module docstring): ``cache`` its side
    of the result cache, ``record`` counts a server's outcome for its breaker, ``router`` and
    ``reach`` forget after DDL (each None when the proxy has none)."""

    __slots__ = ("_cache", "_reach", "_record", "_router")

    def __init__(
        self, cache: CacheStep | None, record: Callable[[str, bool], None],
        router: Forgets | None, reach: Forgets | None,
    ) -> None:  # fmt: skip
        self._cache = cache
        self._record = record
        self._router = router
        self._reach = reach

    def tell(self, exchange: Exchange, target: str) -> None:
        """The transaction on ``exchange``, run on server ``target``, ended."""
        failure = exchange.last_sqlstate
        exchange.last_sqlstate = None
        cache = self._cache
        if cache is not None:
            if cache.fill is not None:
                cache.store(failure is None)
            cache.transaction_ended()
        self._record(target, not (failure and len(failure) == 5 and is_backend_failure(failure)))
        if exchange.ddl_seen:
            exchange.ddl_seen = False
            if self._router is not None:
                self._router.forget()
            if self._reach is not None:
                self._reach.forget()
