"""App B's routes under ``/v1/app-b``: products and inventory."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from ...core.dependencies import PaginationDep
from ...core.openapi import errors
from ...core.responses import PaginatedResponse, SuccessResponse, paginated, success
from ..shared.auth import ADMIN
from ..shared.common_schemas import PRICE_FILTER_PATTERN, IdPath
from .dependencies import CatalogDep, InventoryDep
from .schemas import InventoryRead, ProductCreate, ProductRead, ProductUpdate, StockAdjust

PREFIX = "/v1/app-b"
router = APIRouter(prefix=PREFIX)
PRODUCTS: list[str | Enum] = ["App B: products"]
INVENTORY: list[str | Enum] = ["App B: inventory"]

NameQuery = Annotated[
    str | None,
    Query(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="Name contains."
    ),
]
PriceQuery = Annotated[
    str | None, Query(pattern=PRICE_FILTER_PATTERN, description="A decimal such as 9.90.")
]


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=SuccessResponse[ProductRead],
    tags=PRODUCTS,
    summary="Create a product and its stock",
    responses=errors(401, 403, 409),
    dependencies=ADMIN,
)
async def create_product(
    payload: ProductCreate, catalog: CatalogDep
) -> SuccessResponse[ProductRead]:
    return success(await catalog.create(payload), "Product created")


@router.get(
    "/products",
    response_model=PaginatedResponse[ProductRead],
    tags=PRODUCTS,
    summary="List products (filter by name, price range, active)",
    responses=errors(),
)
async def list_products(
    catalog: CatalogDep,
    pagination: PaginationDep,
    name: NameQuery = None,
    min_price: PriceQuery = None,
    max_price: PriceQuery = None,
    active: bool | None = None,
) -> PaginatedResponse[ProductRead]:
    items, total = await catalog.list(
        pagination,
        name__contains=name,
        price__gte=None if min_price is None else Decimal(min_price),
        price__lte=None if max_price is None else Decimal(max_price),
        active=active,
    )
    return paginated(items, total, pagination.page, pagination.page_size)


@router.get(
    "/products/{product_id}",
    response_model=SuccessResponse[ProductRead],
    tags=PRODUCTS,
    summary="Get a product",
    responses=errors(404),
)
async def get_product(product_id: IdPath, catalog: CatalogDep) -> SuccessResponse[ProductRead]:
    return success(await catalog.get(product_id))


@router.patch(
    "/products/{product_id}",
    response_model=SuccessResponse[ProductRead],
    tags=PRODUCTS,
    summary="Change a product's name, price or availability",
    responses=errors(401, 403, 404),
    dependencies=ADMIN,
)
async def update_product(
    product_id: IdPath, payload: ProductUpdate, catalog: CatalogDep
) -> SuccessResponse[ProductRead]:
    return success(await catalog.update(product_id, payload), "Product updated")


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=PRODUCTS,
    summary="Delete a product that was never ordered",
    responses=errors(401, 403, 404, 409),
    dependencies=ADMIN,
)
async def delete_product(product_id: IdPath, catalog: CatalogDep) -> Response:
    await catalog.delete(product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/inventory",
    response_model=PaginatedResponse[InventoryRead],
    tags=INVENTORY,
    summary="List stock, optionally only below a level",
    responses=errors(),
)
async def list_inventory(
    inventory: InventoryDep,
    pagination: PaginationDep,
    below: Annotated[int | None, Query(ge=0, le=1_000_000_000)] = None,
) -> PaginatedResponse[InventoryRead]:
    items, total = await inventory.list(pagination, below)
    return paginated(items, total, pagination.page, pagination.page_size)


@router.get(
    "/inventory/{product_id}",
    response_model=SuccessResponse[InventoryRead],
    tags=INVENTORY,
    summary="Stock of a product",
    responses=errors(404),
)
async def get_inventory(
    product_id: IdPath, inventory: InventoryDep
) -> SuccessResponse[InventoryRead]:
    return success(await inventory.get(product_id))


@router.post(
    "/inventory/{product_id}/adjust",
    response_model=SuccessResponse[InventoryRead],
    tags=INVENTORY,
    summary="Add to or take from a product's stock",
    description="Taking more than is in stock is refused with code 20001 (HTTP 200).",
    responses=errors(401, 403, 404),
    dependencies=ADMIN,
)
async def adjust_inventory(
    product_id: IdPath, payload: StockAdjust, inventory: InventoryDep
) -> SuccessResponse[InventoryRead]:
    return success(await inventory.adjust(product_id, payload), "Stock adjusted")
