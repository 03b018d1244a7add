"""App A's tables: ``app_a_accounts`` and ``app_a_orders``.

An order names a product of App B by id without a foreign key: the applications share the
database, and the boundary between them is kept by the services (seed 004 §4.2.2).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field

from ..shared.base_models import TimestampedModel

MAX_BALANCE = Decimal("9999999999.99")
ORDER_PLACED = "placed"
ORDER_CANCELLED = "cancelled"


class Account(TimestampedModel, table=True):
    __tablename__ = "app_a_accounts"
    __table_args__ = (UniqueConstraint("username", name="uq_app_a_accounts_username"),)

    username: str = Field(max_length=50)
    email: str = Field(max_length=254)
    balance: Decimal = Field(default=Decimal("0.00"), max_digits=12, decimal_places=2)


class Order(TimestampedModel, table=True):
    __tablename__ = "app_a_orders"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id"], ["app_a_accounts.id"], name="fk_app_a_orders_account_id"
        ),
    )

    account_id: int = Field(index=True)
    product_id: int = Field(index=True)
    quantity: int
    unit_price: Decimal = Field(max_digits=12, decimal_places=2)
    total: Decimal = Field(max_digits=12, decimal_places=2)
    status: str = Field(default=ORDER_PLACED, max_length=20)


class User(TimestampedModel, table=True):
    """Who may log in: an Argon2 password hash (never the password) and roles, a
    comma-separated list (``admin`` manages App B's products and stock)."""

    __tablename__ = "app_a_users"
    __table_args__ = (UniqueConstraint("username", name="uq_app_a_users_username"),)

    username: str = Field(max_length=50)
    password_hash: str = Field(max_length=255)
    roles: str = Field(default="", max_length=200)
    active: bool = Field(default=True)

    @property
    def role_list(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]
