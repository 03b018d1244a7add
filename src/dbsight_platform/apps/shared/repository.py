"""The generic repository (seed 004 §4.2.2): CRUD, filtering, pagination, transactions.

An application's repository subclasses `Repository[Model]` and adds the queries only it
needs. Filters are keyword criteria with Django-like suffixes (``name__contains="lamp"``,
``price__gte=10``, ``status__in=[...]``); ``None`` values are skipped, so a list endpoint
passes its optional query parameters straight through. `transaction` commits a unit of
work or rolls it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from ...core.exceptions import NotFoundException

M = TypeVar("M", bound=SQLModel)

_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "contains", "in")


@asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit what the block did, or roll it all back when it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


def build_filters(model: type[SQLModel], criteria: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions from ``field__operator=value`` criteria (``None`` values skipped)."""
    conditions: list[ColumnElement[bool]] = []
    for key, value in criteria.items():
        if value is None:
            continue
        name, _, operator = key.partition("__")
        operator = operator or "eq"
        if operator not in _OPERATORS:
            raise ValueError(f"unknown filter operator {operator!r} in {key!r}")
        column = getattr(model, name, None)
        if column is None:
            raise ValueError(f"{model.__name__} has no field {name!r}")
        if operator == "eq":
            conditions.append(column == value)
        elif operator == "ne":
            conditions.append(column != value)
        elif operator == "lt":
            conditions.append(column < value)
        elif operator == "lte":
            conditions.append(column <= value)
        elif operator == "gt":
            conditions.append(column > value)
        elif operator == "gte":
            conditions.append(column >= value)
        elif operator == "contains":  # case-insensitive on both databases
            conditions.append(func.lower(column).contains(str(value).lower(), autoescape=True))
        else:
            conditions.append(column.in_(list(value)))
    return conditions


class Repository(Generic[M]):
    """Data access for one model; subclasses set ``model`` (and ``entity`` for messages)."""

    model: type[M]
    entity: str = "Resource"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, entity_id: Any, *, for_update: bool = False) -> M | None:
        if not for_update:
            return await self.session.get(self.model, entity_id)
        return await self.session.get(self.model, entity_id, with_for_update=True)

    async def get_or_raise(self, entity_id: Any, *, for_update: bool = False) -> M:
        found = await self.get(entity_id, for_update=for_update)
        if found is None:
            raise NotFoundException(f"{self.entity} {entity_id} not found")
        return found

    def query(self, **criteria: Any) -> Select[Any]:
        return select(self.model).where(*build_filters(self.model, criteria))

    async def find_one(self, **criteria: Any) -> M | None:
        result = await self.session.execute(self.query(**criteria).limit(1))
        found: M | None = result.scalars().first()
        return found

    async def count(self, **criteria: Any) -> int:
        statement = (
            select(func.count()).select_from(self.model).where(*build_filters(self.model, criteria))
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def page(
        self,
        *,
        page: int,
        page_size: int,
        order_by: Sequence[Any] = (),
        **criteria: Any,
    ) -> tuple[list[M], int]:
        """One page of the matching rows, and how many match in all."""
        conditions = build_filters(self.model, criteria)
        total_statement = select(func.count()).select_from(self.model).where(*conditions)
        total = int((await self.session.execute(total_statement)).scalar_one())
        if total == 0 or (page - 1) * page_size >= total:
            return [], total
        primary_key = self.model.__table__.primary_key.columns.values()  # type: ignore[attr-defined]
        statement = (
            select(self.model)
            .where(*conditions)
            .order_by(*(order_by or primary_key))
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        rows = (await self.session.execute(statement)).scalars().all()
        return list(rows), total

    async def add(self, entity: M) -> M:
        """Insert ``entity``; it has its id (and server defaults) afterwards."""
        self.session.add(entity)
        await self.session.flush()
        await self.session.refresh(entity)
        return entity

    async def update(self, entity: M, values: Mapping[str, Any]) -> list[str]:
        """Set the given fields; returns the names of those that changed."""
        changed = []
        for name, value in values.items():
            if getattr(entity, name) != value:
                setattr(entity, name, value)
                changed.append(name)
        if changed:
            await self.session.flush()
            await self.session.refresh(entity)
        return changed

    async def delete(self, entity: M) -> None:
        await self.session.delete(entity)
        await self.session.flush()
