"""The metadata the migrations describe: every application's tables."""

from __future__ import annotations

from sqlmodel import SQLModel

from ..apps.app_a import models as _app_a_models  # noqa: F401  (registers the tables)
from ..apps.app_b import models as _app_b_models  # noqa: F401

target_metadata = SQLModel.metadata
