"""The shop's statements, on the platform's session (PostgreSQL only: the sample tables of
``dbsight.demo.load_sample_data``).

Each is there to show one thing dbsight finds, as in the standalone sample service
(``dbsight.demo.app``): primary-key and indexed lookups (fast), lookups on columns without
an index (``customers.email``, ``orders.coupon_code``, ``order_items.product_id``: sequential
scans), an N+1 listing (``recent_orders``: one query for the orders, then one per order), a
heavy report, and an order written in one transaction with its audit row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...core.exceptions import NotFoundException, ValidationException
from ..shared.audit import audited_transaction, record_mutation
from .schemas import OrderIn

APP = "shop"

CUSTOMER_BY_EMAIL = text("SELECT id, email, name, country FROM customers WHERE email = :email")
CUSTOMER = text("SELECT id, email, name, country, created_at FROM customers WHERE id = :id")
CUSTOMER_ORDERS = text(
    "SELECT id, status, total, created_at FROM orders WHERE customer_id = :id "
    "ORDER BY created_at DESC LIMIT 10"
)
PRODUCT = text("SELECT id, sku, name, category, price FROM products WHERE id = :id")
PRODUCT_SALES = text(
    "SELECT count(*) AS lines, coalesce(sum(quantity), 0) AS units, "
    "coalesce(sum(quantity * unit_price), 0) AS revenue "
    "FROM order_items WHERE product_id = :id"
)
COUPON_USAGE = text(
    "SELECT count(*) AS orders, coalesce(sum(total), 0) AS revenue FROM orders "
    "WHERE coupon_code = :code"
)
RECENT_ORDERS = text(
    "SELECT id, customer_id, status, total, created_at FROM orders "
    "ORDER BY created_at DESC LIMIT :limit"
)
ORDER = text(
    "SELECT id, customer_id, status, coupon_code, total, created_at FROM orders WHERE id = :id"
)
ORDER_ITEMS = text(
    "SELECT line, product_id, quantity, unit_price FROM order_items "
    "WHERE order_id = :id ORDER BY line"
)
PRICES = text("SELECT id, price FROM products WHERE id = ANY(CAST(:ids AS integer[]))")
INSERT_ORDER = text(
    "INSERT INTO orders (customer_id, status, coupon_code, total, created_at) "
    "VALUES (:customer_id, 'new', :coupon_code, :total, now()) RETURNING id"
)
INSERT_ITEM = text(
    "INSERT INTO order_items (order_id, line, product_id, quantity, unit_price) "
    "VALUES (:order_id, :line, :product_id, :quantity, :unit_price)"
)
REVENUE = text(
    "SELECT p.category, count(DISTINCT o.id) AS orders, "
    "sum(i.quantity * i.unit_price) AS revenue "
    "FROM orders o JOIN order_items i ON i.order_id = o.id "
    "JOIN products p ON p.id = i.product_id "
    "WHERE o.status <> 'cancelled' "
    "AND o.created_at > now() - make_interval(days => :days) "
    "GROUP BY p.category ORDER BY revenue DESC"
)


class ShopService:
    """The shop's reads and its one write, on the request's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _one(self, statement: Any, what: str, **params: Any) -> dict[str, Any]:
        row = (await self.session.execute(statement, params)).mappings().first()
        await self.session.commit()  # end the read's transaction: no idle-in-transaction
        if row is None:
            raise NotFoundException(f"{what} not found")
        return dict(row)

    async def _all(self, statement: Any, **params: Any) -> list[dict[str, Any]]:
        rows = (await self.session.execute(statement, params)).mappings().all()
        return [dict(row) for row in rows]

    async def customer_by_email(self, email: str) -> dict[str, Any]:
        return await self._one(CUSTOMER_BY_EMAIL, "customer", email=email)

    async def customer(self, customer_id: int) -> dict[str, Any]:
        return await self._one(CUSTOMER, "customer", id=customer_id)

    async def customer_orders(self, customer_id: int) -> list[dict[str, Any]]:
        rows = await self._all(CUSTOMER_ORDERS, id=customer_id)
        await self.session.commit()
        return rows

    async def product(self, product_id: int) -> dict[str, Any]:
        return await self._one(PRODUCT, "product", id=product_id)

    async def product_sales(self, product_id: int) -> dict[str, Any]:
        return {
            "product_id": product_id,
            **await self._one(PRODUCT_SALES, "product", id=product_id),
        }

    async def coupon_usage(self, code: str) -> dict[str, Any]:
        return {"code": code, **await self._one(COUPON_USAGE, "coupon", code=code)}

    async def recent_orders(self, limit: int) -> list[dict[str, Any]]:
        # N+1 on purpose: one query for the orders, then one more per order for its items
        # (a join or `order_id = ANY(...)` would be one round trip)
        orders = await self._all(RECENT_ORDERS, limit=limit)
        for order in orders:
            order["items"] = await self._all(ORDER_ITEMS, id=order["id"])
        await self.session.commit()
        return orders

    async def order(self, order_id: int) -> dict[str, Any]:
        found = (await self.session.execute(ORDER, {"id": order_id})).mappings().first()
        if found is None:
            await self.session.commit()
            raise NotFoundException("order not found")
        order = dict(found)
        order["items"] = await self._all(ORDER_ITEMS, id=order_id)
        await self.session.commit()
        return order

    async def revenue(self, days: int) -> list[dict[str, Any]]:
        # deliberately heavy: joins and aggregates a good part of both big tables
        rows = await self._all(REVENUE, days=days)
        await self.session.commit()
        return rows

    async def place_order(self, body: OrderIn) -> dict[str, Any]:
        """One order in one transaction: prices from the products, the order, its lines, and
        its audit row."""
        product_ids = sorted({line.product_id for line in body.items})
        try:
            async with audited_transaction(
                self.session, app=APP, entity="shop_order", action="create"
            ):
                prices = {
                    row["id"]: row["price"] for row in await self._all(PRICES, ids=product_ids)
                }
                missing = [pid for pid in product_ids if pid not in prices]
                if missing:
                    raise ValidationException(f"unknown products: {missing}")
                total = sum(prices[line.product_id] * line.quantity for line in body.items)
                order_id = (
                    await self.session.execute(
                        INSERT_ORDER,
                        {
                            "customer_id": body.customer_id,
                            "coupon_code": body.coupon_code,
                            "total": total,
                        },
                    )
                ).scalar_one()
                await self.session.execute(
                    INSERT_ITEM,
                    [
                        {
                            "order_id": order_id,
                            "line": n,
                            "product_id": line.product_id,
                            "quantity": line.quantity,
                            "unit_price": prices[line.product_id],
                        }
                        for n, line in enumerate(body.items, start=1)
                    ],
                )
                await record_mutation(
                    self.session,
                    app=APP,
                    entity="shop_order",
                    entity_id=order_id,
                    action="create",
                    fields=body.model_fields_set,
                )
        except IntegrityError:
            raise ValidationException("unknown customer") from None
        return {"id": order_id, "total": total}
