"""App A's dependencies: its services on the request's session, and the Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from ...core.dependencies import RedisDep, RedisKeysDep, SessionDep
from .idempotency import IdempotencyStore
from .services import AccountService, OrderService


def get_accounts(session: SessionDep) -> AccountService:
    return AccountService(session)


def get_orders(session: SessionDep, redis: RedisDep, keys: RedisKeysDep) -> OrderService:
    return OrderService(session, IdempotencyStore(redis, keys))


AccountsDep = Annotated[AccountService, Depends(get_accounts)]
OrdersDep = Annotated[OrderService, Depends(get_orders)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Retrying with the same key returns the first attempt's order.",
    ),
]
