"""Global error handling: every failure leaves as an envelope with its code and status.

Two layers. FastAPI exception handlers (registered by `register_exception_handlers`) answer
the platform's own exceptions, request validation (422, codes 3001-3099) and HTTP errors
(404 unknown endpoint, 405 ...). Whatever else escapes a route reaches
`ErrorHandlerMiddleware`, a pure ASGI middleware inside the stack, which classifies it: the
database or Redis unreachable answers 503 (5001, 5003), a constraint violation 409 (4003),
anything else 500 with 9000. The client never sees an exception's text for those: only the
code's generic message and the trace id; the exception goes to the log with the trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .._asgi import ASGIApp, Message, Receive, Scope, Send
from ..core.codes import Code
from ..core.exceptions import PlatformException, SystemException
from ..core.responses import current_trace_id, error_response

log = logging.getLogger("dbsight_platform.errors")

_MAX_MESSAGE = 300
_DRIVERS = frozenset({"asyncpg", "aiomysql", "pymysql"})
_HTTP_CODES = {
    400: Code.MALFORMED_REQUEST,
    401: Code.LOGIN_FAILED,
    403: Code.PERMISSION_DENIED,
    404: Code.ENDPOINT_NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    429: Code.RATE_LIMITED,
    503: Code.DATABASE_ERROR,
}


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


async def platform_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlatformException)
    if isinstance(exc, SystemException):
        log.error(
            "system failure %s: %s",
            exc.code,
            type(exc).__name__,
            exc_info=exc,
            extra={"code": int(exc.code), "trace_id": current_trace_id(), **exc.context},
        )
        return error_response(exc.status, exc.code, None, exc.headers)
    return error_response(exc.status, exc.code, _clip(exc.message), exc.headers)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def validation_exception_handler(request: Request, exc: Exception) -> Response:
    """422 with 3002 when a required field is missing, else 3001; a body that is not JSON at
    all is a malformed request, 400 with 3003 (seed 004 §4.4.3). The message names the
    fields and the rules, never the values given."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    types = {str(item.get("type")) for item in errors}
    if "json_invalid" in types:
        return error_response(
            400, Code.MALFORMED_REQUEST, "Malformed request: the body is not JSON"
        )
    if "missing" in types:
        code = Code.MISSING_FIELD
    else:
        code = Code.INVALID_INPUT
    parts = [f"{_location(tuple(item.get('loc', ())))}: {item.get('msg')}" for item in errors[:5]]
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    message = f"{'Invalid input' if code != Code.MISSING_FIELD else 'Missing required field'}: "
    return error_response(422, code, _clip(message + "; ".join(parts)))


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, Code.UNKNOWN if status >= 500 else Code.INVALID_INPUT)
    if status in (204, 304) or status < 400:
        return Response(status_code=status, headers=exc.headers)
    headers = dict(exc.headers) if exc.headers else None
    if status == 405:
        # Starlette names the methods of the first route matching the path; a path served
        # by several routes (GET and POST /accounts) allows all of theirs.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    if status in (404, 405) and exc.detail == HTTPStatus(status).phrase:
        message = None  # the router's own answer: the code's message says it better
    elif status < 500 and isinstance(exc.detail, str):
        message = _clip(exc.detail)
    else:
        message = None
    return error_response(status, code, message, headers)


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router
        yield from _leaf_routes(included.routes) if included is not None else (route,)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformException, platform_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> tuple[int, int]:
    """(HTTP status, business code) of an exception no handler answered."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy import exc as sa_exc

    chain = _chain(exc)
    for item in chain:
        if isinstance(item, (RedisConnectionError, RedisTimeoutError)):
            return 503, Code.CACHE_ERROR
        if isinstance(item, sa_exc.IntegrityError):
            return 409, Code.CONFLICT
        if isinstance(
            item, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
        ) or (isinstance(item, sa_exc.DBAPIError) and item.connection_invalidated):
            return 503, Code.DATABASE_ERROR
    for item in chain:
        driver_error = type(item).__module__.split(".")[0] in _DRIVERS
        if (driver_error and "connect" in type(item).__name__.lower()) or (
            isinstance(item, (OSError, TimeoutError)) and _from_database_driver(item)
        ):
            return 503, Code.DATABASE_ERROR
    return 500, Code.UNKNOWN


def _from_database_driver(exc: BaseException) -> bool:
    """Whether a bare OSError/TimeoutError was raised inside a database driver's code."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".")[0] in _DRIVERS:
            return True
        tb = tb.tb_next
    return False


class ErrorHandlerMiddleware:
    """Answers what no exception handler did, unless the response has already started (then
    the exception propagates: the server closes the connection, as it must)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            status, code = classify(exc)
            log.error(
                "unhandled %s on %s %s: answered %s with code %s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                status,
                int(code),
                exc_info=exc,
                extra={"code": int(code), "trace_id": current_trace_id()},
            )
            await error_response(status, code)(scope, receive, send)
