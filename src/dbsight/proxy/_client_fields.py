"""What the lease and the relays read of a proxied client on every transaction: the start of
a transaction its routing answered ahead (`RoutingFields.begin`), the settings a primary
connection must have for it (`SettingsFields.wanted`), the bytes its session kept, the
start of a message not yet whole (`SessionFields._client_buffer`), and whether its session
is to end at its next rest (`SessionFields._shutting_down`, which session mode's relay
reads on every answer).

`dbsight.proxy._session_routing.SessionRouting`, `dbsight.proxy._client_settings.ClientSettings`
and `dbsight.proxy._session.FrontendSession` are subclasses, each adding the rest of its
state. Their own module so that they can be compiled (see `dbsight._compiled`; typed by the
``.pxd`` next to it): these are then C fields, which the compiled lease (`Lease.take_primary`)
and relays (`PlainRelay.client_data`, `SessionRelay.server_data`) reach without an
attribute lookup. Without the extension this same source runs as Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RoutingFields:
    """A client's start of a transaction answered ahead, not yet sent (see the module
    docstring)."""

    __slots__ = ("begin",)

    def __init__(self) -> None:
        self.begin: Any = None  # (a `TransactionStart`)


class SettingsFields:
    """What a primary connection must have of a client's settings (see the module docstring)."""

    __slots__ = ("wanted",)

    def __init__(self, wanted: Mapping[str, str]) -> None:
        self.wanted = wanted


class SessionFields:
    """The bytes a client's session kept, and whether it is shutting down (see the module
    docstring)."""

    __slots__ = ("_client_buffer", "_shutting_down")

    def __init__(self) -> None:
        self._client_buffer = b""
        self._shutting_down = False
