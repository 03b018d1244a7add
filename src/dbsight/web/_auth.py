"""Bearer-token checks shared by the in-process endpoints and the proxy's admin port."""

from __future__ import annotations

import hmac
from typing import Any

from .._asgi_types import Receive, Scope, Send


def bearer(token: str | None) -> bytes | None:
    """The ``Authorization`` header value a request must carry (None: no token set)."""
    return f"Bearer {token}".encode() if token else None


def authorized(scope: Scope, expected: bytes | None) -> bool:
    """Whether the request carries ``expected`` (always true when no token is set)."""
    if expected is None:
        return True
    for key, value in scope.get("headers") or ():
        if key.lower() == b"authorization":
            return hmac.compare_digest(bytes(value), expected)
    return False


async def unauthorized(send: Send) -> None:
    """401 with ``WWW-Authenticate: Bearer`` and no body."""
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"www-authenticate", b"Bearer"), (b"content-length", b"0"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


class TokenGuard:
    """``Authorization: Bearer <token>`` on every HTTP request to ``app``, when a token is
    set; the paths in ``exempt`` (probes) pass without one."""

    def __init__(self, app: Any, token: str | None, *, exempt: frozenset[str] = frozenset()):
        self.app = app
        self.expected = bearer(token)
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") not in self.exempt
            and not authorized(scope, self.expected)
        ):
            await unauthorized(send)
            return
        await self.app(scope, receive, send)
