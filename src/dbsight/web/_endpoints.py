"""`Endpoints`: dbsight's HTTP surface as a pure ASGI app.

    {prefix}/metrics          Prometheus text (OpenMetrics when the Accept header asks)
    {prefix}/metrics/summary  JSON: top fingerprints, recent slow queries, N+1 findings
    {prefix}/health           every check; 503 when a critical one fails or times out
    {prefix}/healthz          liveness: 200 while the process serves, no checks at all
    {prefix}/health/ready     readiness: the critical checks (user checks and every live
                              instrumented database or cache); 503 when one fails
    {prefix}/metrics/alerts   JSON: the alert notifier's alerts (firing, or resolved and
                              not yet notified) and the silences in force
    {prefix}/alerts/silences  the silences: GET lists, POST adds, and
                              DELETE {prefix}/alerts/silences/{id} expires (see `_silences`)
    {prefix}/metrics/statement?fingerprint=  JSON: one statement (see `_statement`)
    {prefix}/metrics/timeline JSON: the last hour's rates (see `_timeline`)
    {prefix}/metrics/insights JSON: what the analysis found in this process (`_insights`)

With ``dashboard`` (a `Dashboard`), the web page's files are served too (see `_dashboard`).

dbsight's ASGI middleware calls it for the paths it ``matches()``; on its own,
``Endpoints(app=inner)`` serves them in front of any ASGI app. Each request reads the runtime
current at that moment, so a later ``configure()`` is followed. Only GET and HEAD are
allowed (405 otherwise) but on the silences; every response is ``Cache-Control: no-store``.
When the settings hold an ``admin_token`` (or the one given to `Endpoints`, as the proxy's
admin port does), every endpoint but the probes (``/healthz``, ``/health/ready``) wants
``Authorization: Bearer <token>`` and answers 401 without it; without a token, changing a
silence is allowed from loopback only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from .._asgi_types import ASGIApp, Receive, Scope, Send
from .._runtime import get_runtime
from ..ops.health import HealthCheck, HealthRegistry, gather_checks, health_checks, run_checks
from ..stats import ORDER_BY
from ._auth import authorized, bearer, unauthorized
from ._dashboard import Dashboard
from ._dashboard_json import insights_endpoint, statement_endpoint, timeline_endpoint
from ._insights import insight_log
from ._multiprocess import ensure_writer, multiprocess_dir
from ._reports import MAX_SUMMARY_TOP, SUMMARY_ORDER, SUMMARY_TOP, metrics_exposition, summary
from ._silences import SILENCES_PATH

JSON = "application/json"
_ALLOWED = (b"GET", b"HEAD")
_RUNTIME_TOKEN: Any = object()  # the admin token is the runtime's settings' one


class Endpoints:
    """dbsight's endpoints under ``prefix``; ``metrics``, ``summary`` (with the alerts) and
    ``health`` turn groups off (``liveness`` and ``readiness`` follow ``health`` unless given).

    ``checks`` (`HealthCheck`\\ s, or a `HealthRegistry` read at each request) run besides
    the process-wide ones (``dbsight.add_health_check``) and, unless ``handle_checks=False``,
    the checks of the instrumented databases and caches. ``admin_token`` replaces the
    settings' one (the proxy's admin port has its own); ``summary`` also turns the silences
    (``{prefix}/alerts/silences``) on or off.
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        metrics: bool = True,
        summary: bool = True,
        health: bool = True,
        liveness: bool | None = None,
        readiness: bool | None = None,
        checks: HealthRegistry | Iterable[HealthCheck] = (),
        handle_checks: bool = True,
        app: ASGIApp | None = None,
        admin_token: str | None = _RUNTIME_TOKEN,
        dashboard: Dashboard | None = None,
    ) -> None:
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/' (got {prefix!r})")
        self.prefix = prefix
        self.app = app
        self._admin_token = admin_token
        self.dashboard = dashboard
        if not isinstance(checks, HealthRegistry):
            checks = HealthRegistry(checks)  # raises TypeError for anything but HealthChecks
        self._own_checks = checks
        self._handle_checks = handle_checks
        routes: dict[str, Callable[[Scope], Awaitable[tuple[int, bytes, str]]]] = {}
        if metrics:
            routes[prefix + "/metrics"] = self._metrics
        if summary:
            routes[prefix + "/metrics/summary"] = self._summary
            routes[prefix + "/metrics/alerts"] = self._alerts
            routes[prefix + "/metrics/statement"] = statement_endpoint
            routes[prefix + "/metrics/timeline"] = timeline_endpoint
            routes[prefix + "/metrics/insights"] = insights_endpoint
            insight_log()  # subscribed now: the analysis runs later
        if health:
            routes[prefix + "/health"] = self._health
        if health if liveness is None else liveness:
            routes[prefix + "/healthz"] = self._liveness
        if health if readiness is None else readiness:
            routes[prefix + "/health/ready"] = self._readiness
        self._routes = routes
        self._silences = prefix + SILENCES_PATH if summary else None
        self._probes = frozenset({prefix + "/healthz", prefix + "/health/ready"})

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._routes)

    def matches(self, path: str) -> bool:
        """Whether ``path`` is one of the enabled endpoints. Called for every request by
        the middleware, it also starts the multiprocess writer (see ``_multiprocess``)."""
        ensure_writer()
        return (
            path in self._routes
            or self._silence_path(path)
            or (self.dashboard is not None and self.dashboard.matches(path))
        )

    def template(self, path: str) -> str:
        """The route label of an endpoint's ``path``: itself, but a silence's id as ``{id}``
        (the labels stay bounded)."""
        base = self._silences
        if base is not None and path.startswith(base + "/"):
            return base + "/{id}"
        return path

    def _silence_path(self, path: str) -> bool:
        base = self._silences
        return base is not None and (path == base or path.startswith(base + "/"))

    def _route(self, scope: Scope) -> str | None:
        if scope["type"] != "http":
            return None
        path = scope["path"]
        if path in self._routes or self._silence_path(path):
            return path
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            inner = path[len(root) :]
            if inner in self._routes or self._silence_path(inner):
                return inner
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            ensure_writer()
        path = self._route(scope)
        if path is None:
            page = self._dashboard_path(scope)
            if page is not None:
                assert self.dashboard is not None
                await self.dashboard.serve(scope, send, page)
            elif self.app is not None:
                await self.app(scope, receive, send)
            elif scope["type"] == "lifespan":
                await _lifespan(receive, send)
            elif scope["type"] == "http":
                await _respond(send, 404, b'{"error":"not found"}', JSON, scope)
            return
        token = self._admin_token
        if token is _RUNTIME_TOKEN:
            token = get_runtime().settings.admin_token
        if path not in self._probes and not authorized(scope, bearer(token)):
            await unauthorized(send)
            return
        if self._silence_path(path):
            await self._silence_request(scope, receive, send, path, token is not None)
            return
        if scope["method"].encode() not in _ALLOWED:
            await _respond(
                send, 405, b'{"error":"method not allowed"}', JSON, scope, allow=b"GET, HEAD"
            )
            return
        status, body, content_type = await self._routes[path](scope)
        await _respond(send, status, body, content_type, scope)

    def _dashboard_path(self, scope: Scope) -> str | None:
        """The dashboard file's path (without the root path) ``scope`` asks for, if any."""
        dashboard = self.dashboard
        if dashboard is None or scope["type"] != "http":
            return None
        path, root = scope["path"], scope.get("root_path") or ""
        if root and path.startswith(root) and dashboard.matches(path[len(root):]):
            return path[len(root) :]
        return path if dashboard.matches(path) else None

    # -- the endpoints -------------------------------------------------------------------
    async def _silence_request(
        self, scope: Scope, receive: Receive, send: Send, path: str, token_set: bool
    ) -> None:
        from ._silences import handle

        _share_silences()
        assert self._silences is not None
        status, document, allow = await handle(
            scope, receive, path[len(self._silences) :], token_set
        )
        await _respond(send, status, _dumps(document), JSON, scope, allow=allow)

    async def _metrics(self, scope: Scope) -> tuple[int, bytes, str]:
        runtime = get_runtime()
        accept = _header(scope, b"accept")
        # Collecting is quick in one process; summing the workers' files reads the disk.
        body, content_type = await asyncio.to_thread(metrics_exposition, runtime, accept)
        return 200, body, content_type

    async def _summary(self, scope: Scope) -> tuple[int, bytes, str]:
        """``?limit=N`` (1 to `MAX_SUMMARY_TOP`) and ``?order_by=`` (`ORDER_BY`) choose the
        statements listed; a bad value is a 400 naming it."""
        query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
        limit_text = query.get("limit", [str(SUMMARY_TOP)])[-1]
        order_by = query.get("order_by", [SUMMARY_ORDER])[-1]
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_SUMMARY_TOP:
            return 400, _dumps({"error": f"limit must be 1 to {MAX_SUMMARY_TOP}"}), JSON
        if order_by not in ORDER_BY:
            return 400, _dumps({"error": f"order_by must be one of {', '.join(ORDER_BY)}"}), JSON
        document = await asyncio.to_thread(
            summary, get_runtime(), limit=int(limit_text), order_by=order_by
        )
        return 200, _dumps(document), JSON

    async def _alerts(self, scope: Scope) -> tuple[int, bytes, str]:
        """What the notifier holds (``configured`` is false when no destination is set, and
        there are no alerts then); alerts in Alertmanager's webhook shape."""
        from ..notify import notifier_sink, silences

        _share_silences()
        sink = notifier_sink(get_runtime().sinks)
        now = time.time()
        alerts = sink.notifier.alerts() if sink is not None else []
        document = {
            "configured": sink is not None,
            "alerts": [alert.to_webhook(now) for alert in alerts],
            "silences": [silence.to_dict() for silence in silences.list()],
        }
        return 200, _dumps(document), JSON

    async def _liveness(self, scope: Scope) -> tuple[int, bytes, str]:
        return 200, b'{"status":"ok"}', JSON

    async def _health(self, scope: Scope) -> tuple[int, bytes, str]:
        return await self._report(critical_only=False)

    async def _readiness(self, scope: Scope) -> tuple[int, bytes, str]:
        return await self._report(critical_only=True)

    async def _report(self, *, critical_only: bool) -> tuple[int, bytes, str]:
        checks = gather_checks(
            health_checks.checks(),
            self._own_checks.checks(),
            handles=self._handle_checks,
            critical_only=critical_only,
        )
        report = await run_checks(checks)
        return (200 if report.ok else 503), _dumps(report.to_dict()), JSON


def _share_silences() -> None:
    """The silences live in the multiprocess directory when there is one, so that every
    worker of the service mutes the same alerts whichever of them was asked."""
    from ..notify import silences

    silences.share(multiprocess_dir(get_runtime().settings))


def _dumps(document: Any) -> bytes:
    return json.dumps(document, default=str, separators=(",", ":")).encode()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    scope: Scope,
    *,
    allow: bytes | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    head = scope.get("method") == "HEAD"
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Serve the lifespan protocol when the endpoints run as the whole app."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
