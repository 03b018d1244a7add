"""Global FastAPI dependencies: settings, a database session per request, the Redis client,
pagination. Everything comes from ``app.state`` (set up by `main.create_app`'s lifespan),
so tests and several apps in one process never share module globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from .config import Settings
from .database import Database
from .redis import RedisKeys

MAX_PAGE = 10_000
MAX_PAGE_SIZE = 100


class Pagination(BaseModel):
    """``page`` (from 1) and ``page_size`` (1-100) of a list request."""

    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and any open transaction rolled back) at its end."""
    async with get_database(request).session() as session:
        yield session


def get_redis(request: Request) -> Redis:
    return request.app.state.redis  # type: ignore[no-any-return]


def get_redis_keys(request: Request) -> RedisKeys:
    return request.app.state.redis_keys  # type: ignore[no-any-return]


def get_pagination(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Records per page.")] = 20,
) -> Pagination:
    return Pagination(page=page, page_size=page_size)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]
RedisKeysDep = Annotated[RedisKeys, Depends(get_redis_keys)]
PaginationDep = Annotated[Pagination, Depends(get_pagination)]
