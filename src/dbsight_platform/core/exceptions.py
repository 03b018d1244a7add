"""The exception hierarchy of seed 004 §7.3; the global handlers turn each into an envelope.

Every class carries its business code and HTTP status. Application exceptions are expected
outcomes and their message is shown to the client as written (so it must not quote secrets);
system exceptions are failures of what the platform depends on, and the client sees only
the generic message of their code while the cause goes to the log.

HTTP statuses (seed 004 §4.4.3 and §7.3): a business failure (`BusinessLogicException`:
insufficient balance, an order that cannot be made) answers 200 with its code; a malformed
request 400; authentication 401; permission 403; a missing resource 404; a conflict 409;
the database or Redis down 503; an external service failing 502.
"""

from __future__ import annotations

from typing import Any

from .codes import Code, default_message


class PlatformException(Exception):
    """Base of every exception the handlers know; subclasses set ``code`` and ``status``."""

    code: int = Code.UNKNOWN
    status: int = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message or default_message(self.code)
        self.headers = headers
        # Logged with the exception, never sent to the client.
        self.context = context
        super().__init__(self.message)


class ApplicationException(PlatformException):
    """An expected outcome of the request (the client can act on it)."""

    code: int = Code.INVALID_INPUT
    status = 400


class ValidationException(ApplicationException):
    code: int = Code.INVALID_INPUT
    status = 400


class NotFoundException(ApplicationException):
    code: int = Code.NOT_FOUND
    status = 404


class ConflictException(ApplicationException):
    code: int = Code.CONFLICT
    status = 409


class AlreadyExistsException(ConflictException):
    code: int = Code.ALREADY_EXISTS


class AuthenticationException(ApplicationException):
    code: int = Code.LOGIN_FAILED
    status = 401


class PermissionException(ApplicationException):
    code: int = Code.PERMISSION_DENIED
    status = 403


class RateLimitException(ApplicationException):
    code: int = Code.RATE_LIMITED
    status = 429


class BusinessLogicException(ApplicationException):
    """A business rule refused the request: HTTP 200, the reason in ``code``."""

    code: int = Code.ORDER_CREATION_FAILED
    status = 200


class SystemException(PlatformException):
    """Something the platform depends on failed; the client sees the code's message only."""

    code: int = Code.UNKNOWN
    status = 500


class DatabaseException(SystemException):
    code: int = Code.DATABASE_ERROR
    status = 503


class CacheException(SystemException):
    code: int = Code.CACHE_ERROR
    status = 503


class ExternalServiceException(SystemException):
    code: int = Code.EXTERNAL_SERVICE_ERROR
    status = 502
