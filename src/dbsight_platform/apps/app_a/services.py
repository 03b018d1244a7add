"""App A's business logic: accounts, and orders paid from an account's balance.

Placing an order is one transaction across both applications: the account row and the
product's stock row are locked (always in that order, so concurrent orders cannot deadlock),
the stock is reserved through App B's `InventoryService`, the balance is charged and the
order written; a business rule that refuses (not enough stock: 2001, not enough balance:
2003) rolls all of it back.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..app_b.errors import ProductInactive, StockBelowZero
from ..app_b.services import InventoryService
from ..shared.crud import CrudService, ReadService
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
from .schemas import AccountCreate, AccountRead, Deposit, OrderCreate, OrderRead

APP = "app-a"


class AccountService(CrudService[Account, AccountRead]):
    app = APP
    entity = "account"
    read_schema = AccountRead

    def __init__(self, session: AsyncSession) -> None:
        self.accounts = AccountRepository(session)
        super().__init__(session, self.accounts)

    async def create(self, payload: AccountCreate) -> AccountRead:
        async def build() -> Account:
            return await self.accounts.add(
                Account(username=payload.username, email=payload.email, balance=payload.balance)
            )

        return await self._create(
            build,
            payload.model_fields_set,
            f"An account named {payload.username!r} already exists",
        )

    async def deposit(self, account_id: int, payload: Deposit) -> AccountRead:
        async with self._audited("update", account_id):
            account = await self.accounts.get_or_raise(account_id, for_update=True)
            balance = account.balance + payload.amount
            if balance > MAX_BALANCE:
                raise BalanceLimitExceeded(f"A balance may not exceed {MAX_BALANCE}")
            await self.accounts.update(account, {"balance": balance})
            await self._record("update", account_id, ["balance"])
        return AccountRead.model_validate(account)

    async def _before_delete(self, entity_id: int) -> None:
        if await OrderRepository(self.session).count(account_id=entity_id):
            raise AccountHasOrders(f"Account {entity_id} has orders and cannot be deleted")


class OrderService(ReadService[Order, OrderRead]):
    """Orders are made by `place` and changed only by `cancel` (a refund), never deleted."""

    app = APP
    entity = "order"
    read_schema = OrderRead

    def __init__(self, session: AsyncSession, idempotency: IdempotencyStore) -> None:
        self.orders = OrderRepository(session)
        super().__init__(session, self.orders)
        self.accounts = AccountRepository(session)
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
        async with self._audited("create"):
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
            await self._record("create", order.id, payload.model_fields_set)
        return order

    async def cancel(self, order_id: int) -> OrderRead:
        """Refund the order and return its stock."""
        async with self._audited("update", order_id):
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
            await self._record("update", order_id, ["status"])
        return OrderRead.model_validate(order)
