"""The one place every mutation of every application reports to: dbsight's audit log.

Services call `record_mutation` inside the transaction of the change, after the change is
flushed (so the entity has its id): it writes one ``dbsight_audit_log`` row with
``dbsight.audit.arecord`` on the same session, so a change and its audit row commit or roll
back together. The row names who (the authenticated principal's subject, or
``anonymous``), what (operation, entity type and id), the result, details without secrets
(the application and the names of the fields changed, never their values) and the request
(trace id, request id, route: dbsight's request context).

A unit of work runs in `audited_transaction`: when it raises, its transaction rolls back
(with any success row it wrote) and a ``failure`` row is written on another connection, in a
transaction of its own (``arecord_now``), so a refused or failed mutation leaves its trace.
A failure row that cannot be written is logged; the application's error still propagates.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from dbsight import audit

from .repository import transaction

Action = Literal["create", "update", "delete"]
AUDIT_TABLE = audit.DEFAULT_TABLE_NAME
ANONYMOUS = "anonymous"
log = logging.getLogger("dbsight_platform.audit")

# The request's state (``request.state``: where ``bearer_user`` leaves the principal), set
# for each request by `AuditContextMiddleware`.
_request_state: ContextVar[dict[str, Any] | None] = ContextVar(
    "dbsight_platform_request_state", default=None
)


class AuditContextMiddleware:
    """Pure ASGI: exposes each HTTP request's state to `current_actor` for its duration."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _request_state.set(scope.setdefault("state", {}))
        try:
            await self.app(scope, receive, send)
        finally:
            _request_state.reset(token)


def current_actor() -> str:
    """The authenticated principal's subject, or ``anonymous``."""
    state = _request_state.get()
    principal = state.get("principal") if state is not None else None
    subject = getattr(principal, "subject", None)
    return subject if isinstance(subject, str) and subject else ANONYMOUS


async def record_mutation(
    session: AsyncSession,
    *,
    app: str,
    entity: str,
    entity_id: int | str | None,
    action: Action,
    fields: Iterable[str] = (),
) -> None:
    """Record one change of ``entity`` ``entity_id`` in ``session``'s transaction."""
    await audit.arecord(
        session,
        actor=current_actor(),
        operation=action,
        entity_type=entity,
        entity_id=entity_id,
        details={"app": app, "fields": sorted(fields)},
    )


@asynccontextmanager
async def audited_transaction(
    session: AsyncSession,
    *,
    app: str,
    entity: str,
    action: Action,
    entity_id: int | str | None = None,
) -> AsyncIterator[AsyncSession]:
    """`transaction`, plus a ``failure`` audit row of its own when the block raises."""
    try:
        async with transaction(session):
            yield session
    except Exception as exc:
        await _record_failure(session, app, entity, action, entity_id, exc)
        raise


async def _record_failure(
    session: AsyncSession,
    app: str,
    entity: str,
    action: Action,
    entity_id: int | str | None,
    exc: Exception,
) -> None:
    try:
        await audit.arecord_now(
            session.bind,
            actor=current_actor(),
            operation=action,
            entity_type=entity,
            entity_id=entity_id,
            result="failure",
            error=exc,  # its class and first line, values masked
            details={"app": app, "code": getattr(exc, "code", None)},
        )
    except Exception as failure:  # noqa: BLE001  (the audit log must not hide the error)
        log.warning(
            "could not record the failed %s of %s %s: %s",
            action,
            entity,
            entity_id,
            type(failure).__name__,
        )
