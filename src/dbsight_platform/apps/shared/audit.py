"""The one place every mutation of every application reports to (the audit hook).

Services call `record_mutation` inside the transaction of the change, after the change is
flushed (so the entity has its id). Today it writes one structured line to the
``dbsight_platform.audit`` logger: who (the request's trace), what (application, entity,
id, action) and which fields changed, by name only (values are never logged). The audit-log
table of ``dbsight.audit`` plugs in here: its ``record(session, ...)`` writes in the same
transaction, so a change and its audit row commit or roll back together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from ...core.responses import current_trace_id

Action = Literal["create", "update", "delete"]
log = logging.getLogger("dbsight_platform.audit")


async def record_mutation(
    session: AsyncSession,
    *,
    app: str,
    entity: str,
    entity_id: int | str | None,
    action: Action,
    fields: Iterable[str] = (),
) -> None:
    """Report one change of ``entity`` ``entity_id`` made in ``session``'s transaction."""
    log.info(
        "%s %s %s/%s",
        action,
        app,
        entity,
        entity_id,
        extra={
            "audit_app": app,
            "audit_entity": entity,
            "audit_entity_id": str(entity_id),
            "audit_action": action,
            "audit_fields": sorted(fields),
            "trace_id": current_trace_id(),
        },
    )
