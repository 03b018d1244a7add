"""A small service of its own, instrumented the way an application is and configured by
nothing but its environment (``DBSIGHT_*``): the end-to-end alert test runs it under uvicorn
in a subprocess. Not a test module.

    SERVICE_DSN=postgresql://... uvicorn --factory held_out_service:create_app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

import dbsight


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(os.environ["SERVICE_DSN"], min_size=1, max_size=2)
        dbsight.instrument(pool)
        app.state.pool = pool
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/report/{year}")
    async def report(year: int) -> dict[str, int]:
        async with app.state.pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(0.4), $1::int", year)
        return {"year": year}

    dbsight.instrument(app)
    return app
