"""``RateLimitMiddleware``: the sliding-window limiter in front of an ASGI app (pure ASGI:
no body copying, streaming and contextvars untouched).

Each HTTP request is counted under ``{scope_name}:{key(scope)}``; the key function picks the
client (``client_ip_key`` by default; ``principal_or_ip_key`` for a signed-in user's subject).
A refused request gets 429 with ``Retry-After`` and a JSON body in the platform's response
shape; every limited response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the oldest counted request leaves the window), unless
a route's ``rate_limit()`` dependency set its own.

With Redis down the middleware fails open (``fail_open=True``, the default: requests pass
unlimited, one warning logged per outage) or closed (503 with business code 5001).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from datetime import UTC, datetime
from typing import Any

from ._outage import OutageLog
from .errors import RedisUnavailable
from .ratelimit import RateLimitResult, SlidingWindowLimiter

log = logging.getLogger("dbsight_platform.redis_features.middleware")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
KeyFunc = Callable[[Scope], "str | None | Awaitable[str | None]"]

RATE_LIMITED_CODE = 1029  # business code of a 429 (authentication & authorization range)
UNAVAILABLE_CODE = RedisUnavailable.code


def client_ip_key(scope: Scope) -> str | None:
    """``ip:<address>`` of the peer. Behind a proxy, let the server resolve the client
    (``uvicorn --proxy-headers --forwarded-allow-ips=...``): X-Forwarded-For is not read
    here, as any client could forge it."""
    client = scope.get("client")
    return f"ip:{client[0]}" if client else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def principal_or_ip_key(decode_subject: Callable[[str], str]) -> KeyFunc:
    """``sub:<subject>`` for a request with a valid bearer token (``decode_subject(token)``,
    e.g. ``lambda t: codec.decode(t).subject``; any exception means "not valid"), else
    ``client_ip_key``. The token is verified (signature, expiry), so a forged subject
    cannot spend another user's budget."""

    def key(scope: Scope) -> str | None:
        authorization = _header(scope, b"authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                try:
                    return f"sub:{decode_subject(token.strip())}"
                except Exception as exc:  # noqa: BLE001 - an invalid token is limited by address
                    log.debug("rate limit keyed by address: %s", type(exc).__name__)
        return client_ip_key(scope)

    return key


def _ceil_s(seconds: float) -> int:
    return max(0, math.ceil(seconds))


def limit_headers(result: RateLimitResult) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-ratelimit-limit", str(result.limit).encode()),
        (b"x-ratelimit-remaining", str(result.remaining).encode()),
        (b"x-ratelimit-reset", str(_ceil_s(result.reset_after_s)).encode()),
    ]
    if not result.allowed:
        headers.append((b"retry-after", str(max(1, _ceil_s(result.retry_after_s))).encode()))
    return headers


def error_body(code: int, message: str) -> bytes:
    """The platform's error shape: code, message, data null, trace_id, timestamp."""
    return json.dumps(
        {
            "code": code,
            "message": message,
            "data": None,
            "trace_id": None,
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()


class RateLimitMiddleware:
    """Limit each client to ``limit`` HTTP requests per ``window_s`` (see the module).

    ``exempt_paths``: paths never limited (probes); ``key`` returning None leaves the request
    unlimited; ``scope_name`` separates the budgets of several middlewares or endpoints.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: SlidingWindowLimiter,
        limit: int,
        window_s: float = 60.0,
        key: KeyFunc = client_ip_key,
        scope_name: str = "http",
        exempt_paths: Collection[str] = ("/health", "/healthz", "/health/ready"),
        fail_open: bool = True,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.app = app
        self.limiter = limiter
        self.limit = limit
        self.window_s = window_s
        self.key = key
        self.scope_name = scope_name
        self.exempt_paths = frozenset(exempt_paths)
        self.fail_open = fail_open
        self._outage = OutageLog(log, "requests pass without rate limit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        ident = self.key(scope)
        if inspect.isawaitable(ident):
            ident = await ident
        if ident is None:
            await self.app(scope, receive, send)
            return
        try:
            result = await self.limiter.hit(
                f"{self.scope_name}:{ident}", limit=self.limit, window_s=self.window_s
            )
        except RedisUnavailable as exc:
            if self.fail_open:
                self._outage.down(exc)
                await self.app(scope, receive, send)
                return
            await _respond(send, 503, error_body(UNAVAILABLE_CODE, "Service unavailable"), [])
            return
        self._outage.up()
        headers = limit_headers(result)
        if not result.allowed:
            await _respond(send, 429, error_body(RATE_LIMITED_CODE, "Too many requests"), headers)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = list(message.get("headers", ()))
                # a route's own limit (rate_limit()) already set them: its budget is the
                # one the client meets first
                if not any(bytes(k).lower() == b"x-ratelimit-limit" for k, _ in present):
                    message = {**message, "headers": [*present, *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
