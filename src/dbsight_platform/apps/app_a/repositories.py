"""App A's repositories."""

from __future__ import annotations

from ..shared.repository import Repository
from .models import Account, Order


class AccountRepository(Repository[Account]):
    model = Account
    entity = "Account"


class OrderRepository(Repository[Order]):
    model = Order
    entity = "Order"
