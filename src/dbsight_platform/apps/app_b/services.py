"""App B's business logic: the catalog and the stock, including the stock reservation App A's
orders make (in the order's own transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ...core.dependencies import Pagination
from ...core.exceptions import ConflictException
from ..app_a.repositories import OrderRepository
from ..shared.audit import audited_transaction, record_mutation
from ..shared.crud import CrudService
from .errors import ProductInactive, StockBelowZero, StockLimitExceeded
from .models import MAX_STOCK, InventoryItem, Product
from .repositories import InventoryRepository, ProductRepository
from .schemas import InventoryRead, ProductCreate, ProductRead, StockAdjust

APP = "app-b"


class CatalogService(CrudService[Product, ProductRead]):
    app = APP
    entity = "product"
    read_schema = ProductRead

    def __init__(self, session: AsyncSession) -> None:
        self.products = ProductRepository(session)
        super().__init__(session, self.products)
        self.inventory = InventoryRepository(session)

    async def create(self, payload: ProductCreate) -> ProductRead:
        async def build() -> Product:
            product = await self.products.add(
                Product(sku=payload.sku, name=payload.name, price=payload.price)
            )
            assert product.id is not None
            await self.inventory.add(InventoryItem(product_id=product.id, quantity=payload.stock))
            return product

        return await self._create(
            build,
            payload.model_fields_set,
            f"A product with SKU {payload.sku!r} already exists",
        )

    async def _before_delete(self, entity_id: int) -> None:
        # A cross-application read (seed 004 §4.2.2): App A's orders name products.
        if await OrderRepository(self.session).count(product_id=entity_id):
            raise ConflictException(
                f"Product {entity_id} has orders; deactivate it instead (active=false)"
            )
        inventory = await self.inventory.get(entity_id)
        if inventory is not None:
            await self.inventory.delete(inventory)


class InventoryService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.products = ProductRepository(session)
        self.inventory = InventoryRepository(session)

    async def get(self, product_id: int) -> InventoryRead:
        return InventoryRead.model_validate(await self.inventory.get_or_raise(product_id))

    async def list(
        self, pagination: Pagination, below: int | None = None
    ) -> tuple[list[InventoryRead], int]:
        rows, total = await self.inventory.page(
            page=pagination.page, page_size=pagination.page_size, quantity__lt=below
        )
        return [InventoryRead.model_validate(row) for row in rows], total

    async def adjust(self, product_id: int, payload: StockAdjust) -> InventoryRead:
        async with audited_transaction(
            self.session, app=APP, entity="inventory", action="update", entity_id=product_id
        ):
            item = await self._change(product_id, payload.delta)
        return InventoryRead.model_validate(item)

    async def reserve(self, product_id: int, quantity: int) -> Product:
        """Take ``quantity`` out of stock inside the caller's transaction (App A's orders):
        the stock row stays locked until that transaction ends. Raises a business error when
        the product is inactive or the stock too low."""
        product = await self.products.get_or_raise(product_id)
        if not product.active:
            raise ProductInactive(f"Product {product_id} is not for sale")
        await self._change(product_id, -quantity)
        return product

    async def release(self, product_id: int, quantity: int) -> None:
        """Put ``quantity`` back (a cancelled order), inside the caller's transaction."""
        item = await self.inventory.get(product_id, for_update=True)
        if item is not None:
            await self._change(product_id, quantity)

    async def _change(self, product_id: int, delta: int) -> InventoryItem:
        item = await self.inventory.get_or_raise(product_id, for_update=True)
        quantity = item.quantity + delta
        if quantity < 0:
            raise StockBelowZero(
                f"Stock of product {product_id} is {item.quantity}; cannot take {-delta}"
            )
        if quantity > MAX_STOCK:
            raise StockLimitExceeded(f"Stock of product {product_id} may not exceed {MAX_STOCK}")
        await self.inventory.update(item, {"quantity": quantity})
        await record_mutation(
            self.session,
            app=APP,
            entity="inventory",
            entity_id=product_id,
            action="update",
            fields=["quantity"],
        )
        return item
