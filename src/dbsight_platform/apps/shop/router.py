"""The shop's routes under ``/v1/shop``: the sample shop of ``dbsight demo`` in the platform.

Only for a PostgreSQL database holding the sample tables (``dbsight.demo.load_sample_data``):
``create_app(settings, routers=[shop.router.router])`` adds it, as ``dbsight demo`` does.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from ...core.dependencies import SessionDep
from ...core.openapi import errors
from ...core.responses import SuccessResponse, success
from .schemas import OrderIn
from .services import ShopService

PREFIX = "/v1/shop"
router = APIRouter(prefix=PREFIX)
SHOP: list[str | Enum] = ["Shop"]
TAG = {"name": "Shop", "description": "The sample shop of `dbsight demo` (slow on purpose)."}
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]


def get_shop(session: SessionDep) -> ShopService:
    return ShopService(session)


ShopDep = Annotated[ShopService, Depends(get_shop)]
Answer = SuccessResponse[Any]


@router.get(
    "/customers/lookup",
    response_model=Answer,
    tags=SHOP,
    responses=errors(404),
    summary="Find a customer by e-mail (no index: a sequential scan)",
)
async def customer_by_email(
    shop: ShopDep, email: Annotated[str, Query(min_length=3, max_length=200)]
) -> Answer:
    return success(await shop.customer_by_email(email))


@router.get(
    "/customers/{customer_id}",
    response_model=Answer,
    tags=SHOP,
    responses=errors(404),
    summary="A customer (primary key)",
)
async def customer(customer_id: Id, shop: ShopDep) -> Answer:
    return success(await shop.customer(customer_id))


@router.get(
    "/customers/{customer_id}/orders",
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="A customer's last orders (indexed)",
)
async def customer_orders(customer_id: Id, shop: ShopDep) -> Answer:
    return success(await shop.customer_orders(customer_id))


@router.get(
    "/products/{product_id}",
    response_model=Answer,
    tags=SHOP,
    responses=errors(404),
    summary="A product (primary key)",
)
async def product(product_id: Id, shop: ShopDep) -> Answer:
    return success(await shop.product(product_id))


@router.get(
    "/products/{product_id}/sales",
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="A product's sales (unindexed foreign key: slow)",
)
async def product_sales(product_id: Id, shop: ShopDep) -> Answer:
    return success(await shop.product_sales(product_id))


@router.get(
    "/coupons/{code}",
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="A coupon's use (no index: a sequential scan)",
)
async def coupon_usage(
    code: Annotated[str, Path(min_length=1, max_length=40)], shop: ShopDep
) -> Answer:
    return success(await shop.coupon_usage(code))


@router.get(
    "/orders/recent",
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="The latest orders with their items (N+1 on purpose)",
)
async def recent_orders(shop: ShopDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Answer:
    return success(await shop.recent_orders(limit))


@router.get(
    "/orders/{order_id}",
    response_model=Answer,
    tags=SHOP,
    responses=errors(404),
    summary="An order and its items",
)
async def order(order_id: Id, shop: ShopDep) -> Answer:
    return success(await shop.order(order_id))


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="Place an order (one transaction)",
)
async def place_order(body: OrderIn, shop: ShopDep) -> Answer:
    return success(await shop.place_order(body), "Order placed")


@router.get(
    "/reports/revenue",
    response_model=Answer,
    tags=SHOP,
    responses=errors(),
    summary="Revenue per category (a heavy aggregate)",
)
async def revenue(shop: ShopDep, days: Annotated[int, Query(ge=1, le=3650)] = 30) -> Answer:
    return success(await shop.revenue(days))


@router.get(
    "/ping", response_model=Answer, tags=SHOP, responses=errors(), summary="No database at all"
)
async def ping() -> Answer:
    return success({"ok": True})
