"""The service ``dbsight demo`` serves: the dbsight reference platform (``dbsight_platform``)
with the sample shop as its third application (``/v1/shop/...``), next to App A and App B.

The platform runs as it would in development, on the demo's embedded PostgreSQL and
embedded Redis: its migrations applied to the demo's database (its own tables and the audit
log, beside the shop's sample tables), dbsight instrumenting the app, the engine, Redis and
the outside-call client, with the demo's slow-query and EXPLAIN settings. Its rate limit is
off (the demo's traffic is the load being observed) and its log quiet (the demo prints what
dbsight saw).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

SHOP_PREFIX = "/v1/shop"
DOCS_PATH = "/docs"


def platform_settings(dsn: str, redis_url: str, pool_size: int) -> Any:
    """The platform's settings for the demo (development profile, quiet, no rate limit)."""
    from dbsight_platform.core.config import load_settings

    return load_settings(
        environment="development",
        database_url=dsn,
        redis_url=redis_url,
        redis_key_prefix="dbsight-demo:",
        log_level="WARNING",
        rate_limit_per_minute=0,
        db_pool_size=pool_size,
    )


async def migrate(settings: Any) -> None:
    """Apply the platform's migrations (Alembic runs its own event loop: in a thread)."""
    from dbsight_platform.migrations import runner

    await asyncio.to_thread(runner.upgrade, settings)


def create_platform(settings: Any, dbsight_settings: Mapping[str, Any]) -> FastAPI:
    """The platform with the shop mounted, observed by dbsight with ``dbsight_settings``."""
    from dbsight_platform.apps.shop.router import TAG
    from dbsight_platform.apps.shop.router import router as shop_router
    from dbsight_platform.main import create_app

    return create_app(
        settings, routers=[shop_router], tags=[TAG], dbsight_overrides=dbsight_settings
    )
