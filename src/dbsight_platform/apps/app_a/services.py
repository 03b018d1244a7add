"""App A's business logic: accounts, and orders paid from an account's balance.

Placing an order is one transaction across both applications: the account row and the
product's stock row are locked (always in that order, so concurrent orders cannot deadlock),
the stock is reserved through App B's `InventoryService`, the balance is charged and the
order written; a business rule that refuses (not enough stock: 2001, not enough balance:
2003) rolls all of it back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...core.dependencies import Pagination
from ...core.exceptions import AlreadyExistsException
from ..app_b.errors import ProductInactive, StockBelowZero
from ..app_b.services import InventoryService
from ..shared.audit import audited_transaction, record_mutation
from .errors import (
    AccountHasOrders,
    BalanceLimitExceeded,
    InsufficientBalance,
    OrderAlreadyCancelled,
    OrderCreationFailed,
)
from .idempotency import IdempotencyStore
from .models import MAX_BALANCE, ORDER_CANCELLED, Account, Order
from .repositories import AccountRepository, OrderRepository
from .schemas import AccountCreate, AccountRead, AccountUpdate, Deposit, OrderCreate, OrderRead

APP = "app-a"


class AccountService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.accounts = AccountRepository(session)

    async def create(self, payload: AccountCreate) -> AccountRead:
        try:
            async with audited_transaction(
                self.session, app=APP, entity="account", action="create"
            ):
                account = await self.accounts.add(
                    Account(username=payload.username, email=payload.email, balance=payload.balance)
                )
                await record_mutation(
                    self.session,
                    app=APP,
                    entity="account",
                    entity_id=account.id,
                    action="create",
                    fields=payload.model_fields_set,
                )
        except IntegrityError:
            raise AlreadyExistsException(
                f"An account named {payload.username!r} already exists"
            ) from None
        return AccountRead.model_validate(account)

    async def get(self, account_id: int) -> AccountRead:
        return AccountRead.model_validate(await self.accounts.get_or_raise(account_id))

    async def list(self, pagination: Pagination, **criteria: Any) -> tuple[list[AccountRead], int]:
        rows, total = await self.accounts.page(
            page=pagination.page, page_size=pagination.page_size, **criteria
        )
        return [AccountRead.model_validate(row) for row in rows], total

    async def update(self, account_id: int, payload: AccountUpdate) -> AccountRead:
        async with audited_transaction(
            self.session, app=APP, entity="account", action="update", entity_id=account_id
        ):
            account = await self.accounts.get_or_raise(account_id, for_update=True)
            changed = await self.accounts.update(
                account, payload.model_dump(exclude_unset=True, exclude_none=True)
            )
            if changed:
                await record_mutation(
                    self.session,
                    app=APP,
                    entity="account",
                    entity_id=account_id,
                    action="update",
                    fields=changed,
                )
        return AccountRead.model_validate(account)

    async def deposit(self, account_id: int, payload: Deposit) -> AccountRead:
        async with audited_transaction(
            self.session, app=APP, entity="account", action="update", entity_id=account_id
        ):
            account = await self.accounts.get_or_raise(account_id, for_update=True)
            balance = account.balance + payload.amount
            if balance > MAX_BALANCE:
                raise BalanceLimitExceeded(f"A balance may not exceed {MAX_BALANCE}")
            await self.accounts.update(account, {"balance": balance})
            await record_mutation(
                self.session,
                app=APP,
                entity="account",
                entity_id=account_id,
                action="update",
                fields=["balance"],
            )
        return AccountRead.model_validate(account)

    async def delete(self, account_id: int) -> None:
        async with audited_transaction(
            self.session, app=APP, entity="account", action="delete", entity_id=account_id
        ):
            account = await self.accounts.get_or_raise(account_id, for_update=True)
            if await OrderRepository(self.session).count(account_id=account_id):
                raise AccountHasOrders(f"Account {account_id} has orders and cannot be deleted")
            await self.accounts.delete(account)
            await record_mutation(
                self.session, app=APP, entity="account", entity_id=account_id, action="delete"
            )


class OrderService:
    def __init__(self, session: AsyncSession, idempotency: IdempotencyStore) -> None:
        self.session = session
        self.accounts = AccountRepository(session)
        self.orders = OrderRepository(session)
        self.inventory = InventoryService(session)
        self.idempotency = idempotency

    async def place(
        self, payload: OrderCreate, idempotency_key: str | None = None
    ) -> tuple[OrderRead, bool]:
        """The order, and whether it was made now (False: an earlier request with the same
        idempotency key made it)."""
        if idempotency_key is not None:
            existing = await self.idempotency.claim(idempotency_key)
            if existing is not None:
                return OrderRead.model_validate(await self.orders.get_or_raise(existing)), False
        try:
            order = await self._place(payload)
        except BaseException:
            if idempotency_key is not None:
                await self.idempotency.release(idempotency_key)
            raise
        if idempotency_key is not None:
            assert order.id is not None
            await self.idempotency.complete(idempotency_key, order.id)
        return OrderRead.model_validate(order), True

    async def _place(self, payload: OrderCreate) -> Order:
        async with audited_transaction(self.session, app=APP, entity="order", action="create"):
            account = await self.accounts.get_or_raise(payload.account_id, for_update=True)
            try:
                product = await self.inventory.reserve(payload.product_id, payload.quantity)
            except (StockBelowZero, ProductInactive) as exc:
                raise OrderCreationFailed(f"Order creation failed: {exc.message}") from None
            total = product.price * payload.quantity
            if account.balance < total:
                raise InsufficientBalance(
                    f"Insufficient balance: the order costs {total}, the balance is "
                    f"{account.balance}"
                )
            await self.accounts.update(account, {"balance": account.balance - total})
            order = await self.orders.add(
                Order(
                    account_id=payload.account_id,
                    product_id=payload.product_id,
                    quantity=payload.quantity,
                    unit_price=product.price,
                    total=total,
                )
            )
            await record_mutation(
                self.session,
                app=APP,
                entity="order",
                entity_id=order.id,
                action="create",
                fields=payload.model_fields_set,
            )
        return order

    async def get(self, order_id: int) -> OrderRead:
        return OrderRead.model_validate(await self.orders.get_or_raise(order_id))

    async def list(self, pagination: Pagination, **criteria: Any) -> tuple[list[OrderRead], int]:
        rows, total = await self.orders.page(
            page=pagination.page, page_size=pagination.page_size, **criteria
        )
        return [OrderRead.model_validate(row) for row in rows], total

    async def cancel(self, order_id: int) -> OrderRead:
        """Refund the order and return its stock."""
        async with audited_transaction(
            self.session, app=APP, entity="order", action="update", entity_id=order_id
        ):
            order = await self.orders.get_or_raise(order_id, for_update=True)
            if order.status == ORDER_CANCELLED:
                raise OrderAlreadyCancelled(f"Order {order_id} is already cancelled")
            account = await self.accounts.get_or_raise(order.account_id, for_update=True)
            balance = account.balance + order.total
            if balance > MAX_BALANCE:
                raise BalanceLimitExceeded(f"A balance may not exceed {MAX_BALANCE}")
            await self.accounts.update(account, {"balance": balance})
            await self.inventory.release(order.product_id, order.quantity)
            await self.orders.update(order, {"status": ORDER_CANCELLED})
            await record_mutation(
                self.session,
                app=APP,
                entity="order",
                entity_id=order_id,
                action="update",
                fields=["status"],
            )
        return OrderRead.model_validate(order)
