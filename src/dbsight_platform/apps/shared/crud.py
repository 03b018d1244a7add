"""The audited create/read/update/delete flow the applications' services share.

Every mutation runs in `audited_transaction` and records itself with `record_mutation`
(field names only, never values); a unique key that refuses a new row becomes
`AlreadyExistsException` (409). A service subclasses `CrudService[Model, ReadSchema]` (or
`ReadService` when its mutations are all its own), sets ``app``, ``entity`` and
``read_schema``, and supplies what only it knows: how a row is built (`_create`), its
duplicate message, and what must be checked or removed before a delete (`_before_delete`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...core.dependencies import Pagination
from ...core.exceptions import AlreadyExistsException
from .audit import Action, audited_transaction, record_mutation
from .base_models import TimestampedModel
from .repository import Repository

ModelT = TypeVar("ModelT", bound=TimestampedModel)
ReadT = TypeVar("ReadT", bound=BaseModel)


async def audited_create(
    session: AsyncSession,
    *,
    app: str,
    entity: str,
    build: Callable[[], Awaitable[ModelT]],
    fields: Iterable[str],
    duplicate: str,
) -> ModelT:
    """Run ``build`` (which adds the new row and flushes it) in an audited transaction and
    record the creation; a unique key that refuses the row raises `AlreadyExistsException`
    with the ``duplicate`` message."""
    try:
        async with audited_transaction(session, app=app, entity=entity, action="create"):
            row = await build()
            await record_mutation(
                session, app=app, entity=entity, entity_id=row.id, action="create", fields=fields
            )
    except IntegrityError:
        raise AlreadyExistsException(duplicate) from None
    return row


class ReadService(Generic[ModelT, ReadT]):
    """get / list of one audited entity, and the helpers its own mutations use
    (`_audited`, `_record`)."""

    app: ClassVar[str]
    entity: ClassVar[str]  # the audit log's entity type ("account")
    read_schema: type[ReadT]

    def __init__(self, session: AsyncSession, repository: Repository[ModelT]) -> None:
        self.session = session
        self.repository = repository

    def _audited(
        self, action: Action, entity_id: int | None = None
    ) -> AbstractAsyncContextManager[AsyncSession]:
        return audited_transaction(
            self.session, app=self.app, entity=self.entity, action=action, entity_id=entity_id
        )

    async def _record(
        self, action: Action, entity_id: int | None, fields: Iterable[str] = ()
    ) -> None:
        await record_mutation(
            self.session,
            app=self.app,
            entity=self.entity,
            entity_id=entity_id,
            action=action,
            fields=fields,
        )

    async def get(self, entity_id: int) -> ReadT:
        return self.read_schema.model_validate(await self.repository.get_or_raise(entity_id))

    async def list(self, pagination: Pagination, **criteria: Any) -> tuple[list[ReadT], int]:
        rows, total = await self.repository.page(
            page=pagination.page, page_size=pagination.page_size, **criteria
        )
        return [self.read_schema.model_validate(row) for row in rows], total


class CrudService(ReadService[ModelT, ReadT]):
    """`ReadService` plus create (`_create`), update and delete."""

    async def _create(
        self, build: Callable[[], Awaitable[ModelT]], fields: Iterable[str], duplicate: str
    ) -> ReadT:
        row = await audited_create(
            self.session,
            app=self.app,
            entity=self.entity,
            build=build,
            fields=fields,
            duplicate=duplicate,
        )
        return self.read_schema.model_validate(row)

    async def update(self, entity_id: int, payload: BaseModel) -> ReadT:
        """Set the fields the request gave (an explicit null changes nothing)."""
        async with self._audited("update", entity_id):
            row = await self.repository.get_or_raise(entity_id, for_update=True)
            changed = await self.repository.update(
                row, payload.model_dump(exclude_unset=True, exclude_none=True)
            )
            if changed:
                await self._record("update", entity_id, changed)
        return self.read_schema.model_validate(row)

    async def delete(self, entity_id: int) -> None:
        async with self._audited("delete", entity_id):
            row = await self.repository.get_or_raise(entity_id, for_update=True)
            await self._before_delete(entity_id)
            await self.repository.delete(row)
            await self._record("delete", entity_id)

    async def _before_delete(self, entity_id: int) -> None:
        """Refuse the delete (raise) or remove what depends on the row; nothing by default."""
