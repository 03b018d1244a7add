"""App A's own business codes (10000-19999) and the exceptions that carry them."""

from __future__ import annotations

from enum import IntEnum

from ...core.codes import Code
from ...core.exceptions import BusinessLogicException, ConflictException


class AppACode(IntEnum):
    ORDER_ALREADY_CANCELLED = 10001
    BALANCE_LIMIT_EXCEEDED = 10002
    IDEMPOTENCY_KEY_IN_USE = 10003
    ACCOUNT_HAS_ORDERS = 10004


class InsufficientBalance(BusinessLogicException):
    code = Code.INSUFFICIENT_BALANCE


class OrderCreationFailed(BusinessLogicException):
    code = Code.ORDER_CREATION_FAILED


class OrderAlreadyCancelled(BusinessLogicException):
    code: int = AppACode.ORDER_ALREADY_CANCELLED


class BalanceLimitExceeded(BusinessLogicException):
    code: int = AppACode.BALANCE_LIMIT_EXCEEDED


class IdempotencyKeyInUse(ConflictException):
    code: int = AppACode.IDEMPOTENCY_KEY_IN_USE


class AccountHasOrders(ConflictException):
    code: int = AppACode.ACCOUNT_HAS_ORDERS
