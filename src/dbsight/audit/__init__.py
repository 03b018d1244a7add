"""dbsight's audit log: who changed what, when, with what result, in which request.

    from dbsight import audit

    audit.add_audit_table(SQLModel.metadata)          # or audit.create_audit_table(engine)
    with Session(engine) as session:
        session.add(user); session.flush()
        audit.record(session, actor=current_user.id, operation="create",
                     entity_type="user", entity_id=user.id, details={"email": user.email})
        session.commit()                              # the record commits with the change

    with audit.audited(session, actor=..., operation="delete", entity_type="user",
                       entity_id=user_id, commit=True):
        ...                                           # success: recorded in the transaction;
                                                      # failure: recorded in one of its own

    builder = audit.AuditLogQueryBuilder(engine)      # AsyncAuditLogQueryBuilder(async_engine)
    builder.failed_operations(hours=24)
    builder.compliance_report(date(2026, 1, 1), date(2026, 1, 31)).to_json()
    audit.purge(engine)                               # older than audit_retention_days (90)

Needs SQLAlchemy 2 (``pip install 'dbsight[audit]'``) and the database's driver.
"""

from ._block import AuditEntry, aaudited, audited
from ._query import AsyncAuditLogQueryBuilder, AuditLogQueryBuilder, report_period
from ._record import arecord, arecord_now, audit_row, record, record_now
from ._redact import REDACTED, is_secret_key, redact, sanitize_error
from ._results import AuditRecord, ComplianceReport, Count, ErrorCount
from ._retention import apurge, count_purgeable, purge, purge_cutoff, retention_days
from ._table import (
    DEFAULT_TABLE_NAME,
    FAILURE,
    SUCCESS,
    add_audit_table,
    audit_log,
    audit_metadata,
    create_audit_table,
    create_audit_table_async,
    drop_audit_table,
    migration_downgrade,
    migration_upgrade,
)

__all__ = [
    "DEFAULT_TABLE_NAME",
    "FAILURE",
    "REDACTED",
    "SUCCESS",
    "AsyncAuditLogQueryBuilder",
    "AuditEntry",
    "AuditLogQueryBuilder",
    "AuditRecord",
    "ComplianceReport",
    "Count",
    "ErrorCount",
    "aaudited",
    "add_audit_table",
    "apurge",
    "arecord",
    "arecord_now",
    "audit_log",
    "audit_metadata",
    "audit_row",
    "audited",
    "count_purgeable",
    "create_audit_table",
    "create_audit_table_async",
    "drop_audit_table",
    "is_secret_key",
    "migration_downgrade",
    "migration_upgrade",
    "purge",
    "purge_cutoff",
    "record",
    "record_now",
    "redact",
    "report_period",
    "retention_days",
    "sanitize_error",
]
