"""`ServerFields`: what a server connection's pool and its pooled client read and write of it
on every transaction — its transport and link, the settings it has, its age and last use,
whether it broke or closed.

`dbsight.proxy._backend.BackendConnection` is a subclass (it adds the login, the reads and
the reset). Its own module so that it can be compiled (see `dbsight._compiled`; typed by the
``.pxd`` next to it): these are then C fields, which the compiled pool (`BackendPool.park`,
`take_back`) and lease (`Lease.take_primary`) reach without an attribute lookup. Without the
extension this same source runs as Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._link_relay import Sender


class ServerFields:
    """A server connection's per-transaction state (see the module docstring)."""

    __slots__ = (
        "transport",
        "link",
        "settings",
        "prepared",
        "created_at",
        "last_used_at",
        "broken",
        "closed",
        "parked_by",
        "sender",
    )

    def __init__(self, transport: Any, link: Any, settings: Mapping[str, str], at: float) -> None:
        # its transport (TLS, if any, is set up before: it stays this one), read per unit
        self.transport = transport
        self.link = link  # to relay a client's transaction over it (see dbsight.proxy._link)
        self.settings = settings  # set by the session layer, not login
        self.prepared: dict[str, str] = {}
        self.created_at = at
        self.last_used_at = at
        self.broken = False
        self.closed = False
        # while parked in its pool (`BackendPool.park`): the callback that detaches it from
        # the client that parked it; else None
        self.parked_by: Any = None
        self.sender = Sender(transport)  # what a relay writes to it with
