"""Business codes (seed 004 §4.4.2): what happened, in the ``code`` field of every answer.

0 is success; the ranges name a category. Each application has a range of its own for codes
only it uses (App A 10000-19999, App B 20000-29999), declared in its ``errors`` module.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    SUCCESS = 0
    # 1000-1999 authentication and authorization
    LOGIN_FAILED = 1001
    TOKEN_EXPIRED = 1002
    PERMISSION_DENIED = 1003
    RATE_LIMITED = 1029
    # 2000-2999 business logic
    ORDER_CREATION_FAILED = 2001
    PAYMENT_FAILED = 2002
    INSUFFICIENT_BALANCE = 2003
    # 3000-3999 validation
    INVALID_INPUT = 3001
    MISSING_FIELD = 3002
    MALFORMED_REQUEST = 3003
    # 4000-4999 resources
    NOT_FOUND = 4001
    ALREADY_EXISTS = 4002
    CONFLICT = 4003
    ENDPOINT_NOT_FOUND = 4004
    METHOD_NOT_ALLOWED = 4005
    # 5000-5999 system
    DATABASE_ERROR = 5001
    EXTERNAL_SERVICE_ERROR = 5002
    CACHE_ERROR = 5003
    # 9000-9999 unknown
    UNKNOWN = 9000


MESSAGES: dict[int, str] = {
    Code.SUCCESS: "Success",
    Code.LOGIN_FAILED: "Login failed",
    Code.TOKEN_EXPIRED: "Token expired",
    Code.PERMISSION_DENIED: "Insufficient permissions",
    Code.RATE_LIMITED: "Too many requests",
    Code.ORDER_CREATION_FAILED: "Order creation failed",
    Code.PAYMENT_FAILED: "Payment failed",
    Code.INSUFFICIENT_BALANCE: "Insufficient balance",
    Code.INVALID_INPUT: "Invalid input",
    Code.MISSING_FIELD: "Missing required field",
    Code.MALFORMED_REQUEST: "Malformed request",
    Code.NOT_FOUND: "Resource not found",
    Code.ALREADY_EXISTS: "Resource already exists",
    Code.CONFLICT: "Resource conflict",
    Code.ENDPOINT_NOT_FOUND: "Endpoint not found",
    Code.METHOD_NOT_ALLOWED: "Method not allowed",
    Code.DATABASE_ERROR: "Database unavailable",
    Code.EXTERNAL_SERVICE_ERROR: "External service error",
    Code.CACHE_ERROR: "Cache unavailable",
    Code.UNKNOWN: "Internal server error",
}


def default_message(code: int) -> str:
    return MESSAGES.get(code, "Error")
