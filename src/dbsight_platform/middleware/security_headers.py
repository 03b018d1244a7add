"""Security headers on every response (seed 004 §9.8), dbsight's endpoints included.

``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy``,
``Content-Security-Policy`` (the API's strict one; the interactive docs get one that lets
their page load its scripts), and ``Strict-Transport-Security`` when the platform is served
over HTTPS (``PLATFORM_HTTPS`` or a ``https`` scope behind a proxy that says so). A header
the route set itself is left as it is.
"""

from __future__ import annotations

from .._asgi import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(
        self, app: ASGIApp, *, csp: str, https: bool = False, hsts_max_age_s: int = 31_536_000
    ) -> None:
        self.app = app
        base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        self._hsts = (
            b"strict-transport-security",
            b"max-age=%d; includeSubDomains" % hsts_max_age_s,
        )
        self._always_https = https
        self._api = [*base, (b"content-security-policy", csp.encode("latin-1"))]
        self._docs = [*base, (b"content-security-policy", DOCS_CSP.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = list(self._docs if path.startswith(DOCS_PATHS) else self._api)
        if self._always_https or scope.get("scheme") == "https":
            extra.append(self._hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
