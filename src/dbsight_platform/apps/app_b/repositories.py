"""App B's repositories."""

from __future__ import annotations

from ..shared.repository import Repository
from .models import InventoryItem, Product


class ProductRepository(Repository[Product]):
    model = Product
    entity = "Product"


class InventoryRepository(Repository[InventoryItem]):
    model = InventoryItem
    entity = "Inventory of product"
