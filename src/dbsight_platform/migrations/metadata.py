"""The metadata the migrations describe: every application's tables and the audit log."""

from __future__ import annotations

from sqlmodel import SQLModel

from dbsight import audit

from ..apps.app_a import models as _app_a_models  # noqa: F401  (registers the tables)
from ..apps.app_b import models as _app_b_models  # noqa: F401
from ..apps.shared.audit import AUDIT_TABLE

target_metadata = SQLModel.metadata
if AUDIT_TABLE not in target_metadata.tables:
    audit.add_audit_table(target_metadata, AUDIT_TABLE)
