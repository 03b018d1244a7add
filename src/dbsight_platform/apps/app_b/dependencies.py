"""App B's dependencies: its services, on the request's session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ...core.dependencies import SessionDep
from .services import CatalogService, InventoryService


def get_catalog(session: SessionDep) -> CatalogService:
    return CatalogService(session)


def get_inventory(session: SessionDep) -> InventoryService:
    return InventoryService(session)


CatalogDep = Annotated[CatalogService, Depends(get_catalog)]
InventoryDep = Annotated[InventoryService, Depends(get_inventory)]
