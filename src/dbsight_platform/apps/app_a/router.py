"""App A's routes under ``/v1/app-a``: accounts and orders."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from ...core.dependencies import PaginationDep
from ...core.openapi import errors
from ...core.responses import PaginatedResponse, SuccessResponse, paginated, success
from ..shared.auth import AUTHENTICATED
from ..shared.common_schemas import IdPath, OptionalIdQuery
from .dependencies import AccountsDep, IdempotencyKeyHeader, OrdersDep
from .schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    Deposit,
    OrderCreate,
    OrderRead,
    OrderStatus,
)

PREFIX = "/v1/app-a"
router = APIRouter(prefix=PREFIX)
ACCOUNTS: list[str | Enum] = ["App A: accounts"]
ORDERS: list[str | Enum] = ["App A: orders"]

ContainsQuery = Annotated[
    str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    response_model=SuccessResponse[AccountRead],
    tags=ACCOUNTS,
    summary="Open an account",
    responses=errors(401, 409),
    dependencies=AUTHENTICATED,
)
async def create_account(
    payload: AccountCreate, accounts: AccountsDep
) -> SuccessResponse[AccountRead]:
    return success(await accounts.create(payload), "Account created")


@router.get(
    "/accounts",
    response_model=PaginatedResponse[AccountRead],
    tags=ACCOUNTS,
    summary="List accounts (filter by username or e-mail)",
    responses=errors(),
)
async def list_accounts(
    accounts: AccountsDep,
    pagination: PaginationDep,
    username: ContainsQuery = None,
    email: ContainsQuery = None,
) -> PaginatedResponse[AccountRead]:
    items, total = await accounts.list(
        pagination, username__contains=username, email__contains=email
    )
    return paginated(items, total, pagination.page, pagination.page_size)


@router.get(
    "/accounts/{account_id}",
    response_model=SuccessResponse[AccountRead],
    tags=ACCOUNTS,
    summary="Get an account",
    responses=errors(404),
)
async def get_account(account_id: IdPath, accounts: AccountsDep) -> SuccessResponse[AccountRead]:
    return success(await accounts.get(account_id))


@router.patch(
    "/accounts/{account_id}",
    response_model=SuccessResponse[AccountRead],
    tags=ACCOUNTS,
    summary="Change an account's e-mail",
    responses=errors(401, 404),
    dependencies=AUTHENTICATED,
)
async def update_account(
    account_id: IdPath, payload: AccountUpdate, accounts: AccountsDep
) -> SuccessResponse[AccountRead]:
    return success(await accounts.update(account_id, payload), "Account updated")


@router.post(
    "/accounts/{account_id}/deposit",
    response_model=SuccessResponse[AccountRead],
    tags=ACCOUNTS,
    summary="Add money to an account",
    description="A balance past 9 999 999 999.99 is refused with code 10002 (HTTP 200).",
    responses=errors(401, 404),
    dependencies=AUTHENTICATED,
)
async def deposit(
    account_id: IdPath, payload: Deposit, accounts: AccountsDep
) -> SuccessResponse[AccountRead]:
    return success(await accounts.deposit(account_id, payload), "Deposited")


@router.delete(
    "/accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=ACCOUNTS,
    summary="Close an account without orders",
    responses=errors(401, 404, 409),
    dependencies=AUTHENTICATED,
)
async def delete_account(account_id: IdPath, accounts: AccountsDep) -> Response:
    await accounts.delete(account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=SuccessResponse[OrderRead],
    tags=ORDERS,
    summary="Place an order paid from the account's balance",
    description=(
        "Reserves the stock (App B) and charges the balance in one transaction. Refusals "
        "answer HTTP 200 with their code: 2001 not enough stock or product not for sale, "
        "2003 insufficient balance. With `Idempotency-Key`, a retry returns the first "
        "order (HTTP 200, message `Order already placed`)."
    ),
    responses={
        200: {"model": SuccessResponse[OrderRead], "description": "Already placed, or refused"},
        **errors(401, 404, 409),
    },
    dependencies=AUTHENTICATED,
)
async def place_order(
    payload: OrderCreate,
    orders: OrdersDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> SuccessResponse[OrderRead]:
    order, created = await orders.place(payload, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
        return success(order, "Order already placed")
    return success(order, "Order placed")


@router.get(
    "/orders",
    response_model=PaginatedResponse[OrderRead],
    tags=ORDERS,
    summary="List orders (filter by account or status)",
    responses=errors(),
)
async def list_orders(
    orders: OrdersDep,
    pagination: PaginationDep,
    account_id: OptionalIdQuery = None,
    order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
) -> PaginatedResponse[OrderRead]:
    items, total = await orders.list(pagination, account_id=account_id, status=order_status)
    return paginated(items, total, pagination.page, pagination.page_size)


@router.get(
    "/orders/{order_id}",
    response_model=SuccessResponse[OrderRead],
    tags=ORDERS,
    summary="Get an order",
    responses=errors(404),
)
async def get_order(order_id: IdPath, orders: OrdersDep) -> SuccessResponse[OrderRead]:
    return success(await orders.get(order_id))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=SuccessResponse[OrderRead],
    tags=ORDERS,
    summary="Cancel an order: refund it and return its stock",
    description="An order already cancelled is refused with code 10001 (HTTP 200).",
    responses=errors(401, 404),
    dependencies=AUTHENTICATED,
)
async def cancel_order(order_id: IdPath, orders: OrdersDep) -> SuccessResponse[OrderRead]:
    return success(await orders.cancel(order_id), "Order cancelled")
