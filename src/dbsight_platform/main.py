"""The platform's entry point: `create_app` builds the service in seed 004 §6.4's order.

1. load the settings (an invalid one stops here, naming the variable);
2. initialise tracing and logging: the OTLP exporters when a collector is configured, the
   log format of the profile, and dbsight, which then instruments everything below;
3. create the database engine and its pool;
4. create the Redis client and its pool (and the shared HTTP client for outside calls);
5. install authentication (JWT, the Redis revocation list, Argon2), register App A's
   login routes and router, then App B's (then any the caller adds: ``dbsight demo`` adds
   the shop, ``apps.shop``);
6. apply the middleware;
7. register the exception handlers;
8. the server starts it (``python -m dbsight_platform serve``, or gunicorn with
   ``gunicorn.conf.py``); on SIGTERM the server stops accepting, lets the requests in
   flight finish within the grace period, and the lifespan then closes the pools and
   flushes the telemetry.

``uvicorn dbsight_platform.main:app`` works too: ``app`` is built from the environment on
first access.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

import dbsight

from .apps.app_a.auth_router import router as auth_router
from .apps.app_a.router import router as app_a_router
from .apps.app_b.router import router as app_b_router
from .apps.shared.audit import AuditContextMiddleware
from .core.config import Settings, load_settings
from .core.database import Database
from .core.openapi import BEARER_SCHEME, TAGS
from .core.redis import RedisKeys, close_redis, create_redis
from .core.security import wire_security
from .middleware.error_handler import ErrorHandlerMiddleware, register_exception_handlers
from .middleware.rate_limit import add_rate_limit
from .middleware.security_headers import SecurityHeadersMiddleware
from .observability.logging import configure_logging
from .observability.telemetry import Telemetry, setup_telemetry

log = logging.getLogger("dbsight_platform")

_DBSIGHT_ENVIRONMENTS = {"development": "dev", "staging": "staging", "production": "prod"}
DESCRIPTION = """\
The dbsight reference platform: independent applications behind one entry point, on one
database and one Redis, observed by dbsight.

Every answer is an envelope `{code, message, data, trace_id, timestamp}`: `code` 0 is
success, anything else says why it failed (1000s authentication, 2000s business rules,
3000s validation, 4000s resources, 5000s the platform's dependencies, 9000 unexpected;
App A 10000s, App B 20000s). A business refusal is HTTP 200 with its code. `trace_id` is
the W3C trace id of the request, also in the `traceparent` response header.
"""


def _setup_observability(
    settings: Settings, dbsight_overrides: Mapping[str, Any] | None = None
) -> Telemetry:
    telemetry = setup_telemetry(settings)
    configure_logging(settings)
    # DBSIGHT_* variables tune dbsight further; these follow the platform's profile.
    overrides: dict[str, Any] = {
        "service_name": settings.service_name,
        "environment": _DBSIGHT_ENVIRONMENTS[settings.environment],
        "trace_sample_rate": settings.effective_trace_sample_rate,
    }
    if settings.log_sample_rate is not None:
        overrides["log_sample_rate"] = settings.log_sample_rate
    overrides.update(dbsight_overrides or {})
    dbsight.configure(
        dbsight.core.load_settings(**overrides), tracer_provider=telemetry.tracer_provider
    )
    return telemetry


def _lifespan(
    database: Database,
    redis: Any,
    http: httpx.AsyncClient,
    telemetry: Telemetry,
    handles: list[dbsight.InstrumentationHandle],
) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        log.info(
            "%s started (%s, %s database)",
            settings.app_name,
            settings.environment,
            settings.database_backend,
        )
        try:
            yield
        finally:
            # The server has stopped accepting and drained the requests in flight.
            log.info("%s stopping: closing pools, flushing telemetry", settings.app_name)
            await http.aclose()
            await close_redis(redis)
            await database.close()
            for handle in handles:  # their health checks go with them
                handle.uninstrument()
            telemetry.shutdown()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    routers: Sequence[APIRouter] = (),
    tags: Sequence[Mapping[str, Any]] = (),
    dbsight_overrides: Mapping[str, Any] | None = None,
) -> FastAPI:
    """Build the platform (see the module docstring for the order).

    ``routers``: more applications after App A and App B (``tags``: their OpenAPI tags);
    ``dbsight_overrides``: dbsight settings over the profile's (``dbsight demo`` passes its
    slow-query threshold, log and EXPLAIN settings).
    """
    settings = settings if settings is not None else load_settings()
    telemetry = _setup_observability(settings, dbsight_overrides)

    database = Database(settings)
    handles = [dbsight.instrument(database.engine)]
    redis = create_redis(settings)
    handles.append(dbsight.instrument(redis))
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    handles.append(dbsight.instrument(http))

    docs = settings.docs_enabled
    app = FastAPI(
        title="dbsight platform",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=[*TAGS, *(dict(tag) for tag in tags)],
        debug=settings.debug,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan(database, redis, http, telemetry, handles),
        contact={"name": "dbsight", "url": "https://github.com/dbsight"},
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.redis = redis
    app.state.redis_keys = RedisKeys(settings.redis_key_prefix)
    app.state.http = http
    app.state.telemetry = telemetry

    wire_security(app, settings, redis, app.state.redis_keys)
    app.include_router(auth_router)
    app.include_router(app_a_router)
    app.include_router(app_b_router)
    for router in routers:
        app.include_router(router)

    _apply_middleware(app, settings, redis)
    register_exception_handlers(app)
    _document_security(app)
    return app


def _apply_middleware(app: FastAPI, settings: Settings, redis: Any) -> None:
    """Outermost first: security headers, dbsight (trace context, request log, metrics),
    Starlette's error middleware, CORS, gzip, the rate limit, the error handler, then the
    routes (each `add_middleware` goes around the ones before it)."""
    app.add_middleware(AuditContextMiddleware)  # the audit log's actor: the principal
    app.add_middleware(ErrorHandlerMiddleware)
    add_rate_limit(app, settings, redis)
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_size, compresslevel=6)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "traceparent"],
            expose_headers=["traceparent", "X-Request-ID", "Retry-After"],
        )
    # dbsight's middleware goes around the whole stack, so the endpoints it serves
    # (/health, /metrics ...) and the 500s of Starlette's error middleware are observed.
    dbsight.instrument(app)
    build = app.build_middleware_stack

    def build_with_security_headers() -> Any:
        return SecurityHeadersMiddleware(
            build(),
            csp=settings.content_security_policy,
            https=settings.https,
            hsts_max_age_s=settings.hsts_max_age_s,
        )

    app.build_middleware_stack = build_with_security_headers  # type: ignore[method-assign]


def _document_security(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document (the JWT the platform issues)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
                BEARER_SCHEME
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@lru_cache(maxsize=1)
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    """``dbsight_platform.main:app``, built from the environment when a server asks for it."""
    if name == "app":
        return _default_app()
    raise AttributeError(name)
