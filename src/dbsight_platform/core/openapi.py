"""OpenAPI documentation helpers: the error answers each route documents, the security scheme.

Every route documents 400 (a body that cannot be read), 422 (validation), 429 (rate
limited), 500 (unexpected) and 503 (database or Redis down) with the error envelope, plus
the statuses it can answer itself (`errors(404, 409)`).
"""

from __future__ import annotations

from typing import Any

from .responses import ErrorResponse

DESCRIPTIONS = {
    200: "Business failure: `code` says why (the request itself was fine)",
    400: "Malformed request (codes 3000-3999)",
    401: "Not authenticated (codes 1001-1099)",
    403: "Not permitted (code 1003)",
    404: "Resource not found (code 4001)",
    409: "Conflict: already exists (4002) or state conflict (4003)",
    422: "Validation failed (codes 3001-3099)",
    429: "Rate limited (code 1029); Retry-After says when to retry",
    500: "Unexpected error (code 9000)",
    502: "External service failed (code 5002)",
    503: "Database (5001) or Redis (5003) unavailable",
}
ALWAYS = (400, 422, 429, 500, 503)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: its own error statuses and the ones every route has."""
    return {
        status: {"model": ErrorResponse, "description": DESCRIPTIONS[status]}
        for status in sorted({*statuses, *ALWAYS})
    }


BEARER_SCHEME = {
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from the platform's login (Authorization: Bearer ...).",
    }
}

TAGS = [
    {"name": "App A: authentication", "description": "Log in, log out, who am I."},
    {"name": "App A: accounts", "description": "Customer accounts and their balance."},
    {"name": "App A: orders", "description": "Orders paid from an account's balance."},
    {"name": "App B: products", "description": "The product catalog."},
    {"name": "App B: inventory", "description": "Stock per product."},
]
