"""The response envelope (seed 004 §4.4): ``{code, message, data, trace_id, timestamp}``.

Success and error answers share it. ``trace_id`` is the request's W3C trace id, the one the
response's ``traceparent`` header carries, so a client quoting it finds the request's trace
and log lines. Builders: `success`, `error`, `paginated`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field

import dbsight

from .codes import Code, default_message

T = TypeVar("T")

_EXAMPLE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_EXAMPLE_TIME = "2026-01-15T10:30:00Z"


def current_trace_id() -> str:
    """The W3C trace id of the request being served (32 hex digits)."""
    request = dbsight.current_request()
    if request is not None and request.trace_id:
        return request.trace_id
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return format(span_context.trace_id, "032x")
    return secrets.token_hex(16)


def _now() -> datetime:
    return datetime.now(UTC)


class ApiResponse(BaseModel, Generic[T]):
    """Every answer of the platform's applications, success and error alike."""

    code: int = Field(description="Business code: 0 success, >0 the reason it failed.")
    message: str = Field(description="What happened, for people.")
    data: T | None = Field(None, description="The payload; null on errors.")
    trace_id: str = Field(description="W3C trace id of the request (as in `traceparent`).")
    timestamp: datetime = Field(description="When the answer was made (ISO 8601, UTC).")


class SuccessResponse(ApiResponse[T], Generic[T]):
    """An answer with ``code`` 0 and its payload."""

    code: int = Field(0, description="0: success.")
    message: str = "Success"


class ErrorResponse(ApiResponse[None]):
    """An answer with ``code`` > 0 and no payload."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": 4001,
                    "message": "Resource not found",
                    "data": None,
                    "trace_id": _EXAMPLE_TRACE,
                    "timestamp": _EXAMPLE_TIME,
                }
            ]
        }
    )


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(ge=0, description="Matching records over all pages.")
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    total_pages: int = Field(ge=0)


class PaginatedResponse(ApiResponse[Page[T]], Generic[T]):
    """An answer whose ``data`` is a `Page`."""

    code: int = 0
    message: str = "Success"


def success(data: Any = None, message: str = "Success") -> SuccessResponse[Any]:
    return SuccessResponse[Any](
        code=Code.SUCCESS, message=message, data=data, trace_id=current_trace_id(), timestamp=_now()
    )


def error(code: int, message: str | None = None) -> ErrorResponse:
    return ErrorResponse(
        code=int(code),
        message=message or default_message(code),
        data=None,
        trace_id=current_trace_id(),
        timestamp=_now(),
    )


def paginated(
    items: Sequence[Any], total: int, page: int, page_size: int, message: str = "Success"
) -> PaginatedResponse[Any]:
    page_data = Page[Any](
        items=list(items),
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size) if page_size else 0,
    )
    return PaginatedResponse[Any](
        code=Code.SUCCESS,
        message=message,
        data=page_data,
        trace_id=current_trace_id(),
        timestamp=_now(),
    )


def error_response(
    status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error envelope as an HTTP response (what the exception handlers send)."""
    body = error(code, message).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers)
