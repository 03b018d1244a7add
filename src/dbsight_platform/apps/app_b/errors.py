"""App B's own business codes (20000-29999) and the exceptions that carry them."""

from __future__ import annotations

from enum import IntEnum

from ...core.exceptions import BusinessLogicException


class AppBCode(IntEnum):
    STOCK_BELOW_ZERO = 20001
    STOCK_LIMIT_EXCEEDED = 20002
    PRODUCT_INACTIVE = 20003


class StockBelowZero(BusinessLogicException):
    code: int = AppBCode.STOCK_BELOW_ZERO


class StockLimitExceeded(BusinessLogicException):
    code: int = AppBCode.STOCK_LIMIT_EXCEEDED


class ProductInactive(BusinessLogicException):
    code: int = AppBCode.PRODUCT_INACTIVE
