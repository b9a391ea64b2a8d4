"""The error base every domain raises, and the one handler that renders the envelope."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from billwarden.core.request_id import current_request_id
from billwarden.core.responses import OrjsonResponse
from billwarden.crypto import SecretDecryptionError

logger = logging.getLogger("billwarden.errors")


class BillwardenError(Exception):
    """An error with a stable code, a human message, an HTTP status and structured details."""

    code: str = "BILLWARDEN_ERROR"
    status_code: int = 400
    # True: the unit of work commits what was written before the error, then it is answered
    # (a failed sign-in is counted and still refused)
    keeps_changes: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details: dict[str, Any] = details or {}
        self.headers: dict[str, str] | None = headers


class NotFound(BillwardenError):
    code = "NOT_FOUND"
    status_code = 404


class Conflict(BillwardenError):
    code = "CONFLICT"
    status_code = 409


class Unauthorized(BillwardenError):
    code = "UNAUTHORIZED"
    status_code = 401


class Forbidden(BillwardenError):
    code = "FORBIDDEN"
    status_code = 403


class InvalidInput(BillwardenError):
    code = "VALIDATION_ERROR"
    status_code = 400


class ErrorEnvelope(BaseModel):
    """The body of every error billwarden answers."""

    code: str
    message: str
    details: dict[str, Any]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring that a route answers these errors."""
    return {
        status: {"model": ErrorEnvelope, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def _envelope(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse(
        {"code": code, "message": message, "details": details or {}},
        status_code=status_code,
        headers=headers,
    )


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    fields = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        fields.append(
            {
                "location": location[0] if location else "body",
                "field": ".".join(location[1:]),
                "message": str(error.get("msg", "invalid value")),
                "type": str(error.get("type", "value_error")),
            }
        )
    return {"fields": fields}


async def _handle_billwarden_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, BillwardenError)
    return _envelope(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _handle_validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(field["type"] == "json_invalid" for field in details["fields"]):
        message = "The request body is not valid JSON."
    else:
        message = "The request is invalid."
    return _envelope(400, "VALIDATION_ERROR", message, details)


# the methods a 405 asks every route about
_PROBED_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path, sorted.

    Starlette's 405 names the methods of the first route matching the path only, and FastAPI
    keeps an included router as one route, so each method is put to every route in turn: a route
    (or included router) matching in full serves it. Mounts match any method and are left out.
    """
    allowed: set[str] = set()
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    for method in _PROBED_METHODS:
        # matching may write into the scope's nested dicts: give it copies
        probe = {
            key: dict(value) if isinstance(value, dict) else value
            for key, value in request.scope.items()
        }
        probe["method"] = method
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.add(method)
    if "GET" in allowed:
        allowed.add("HEAD")  # every read route answers HEAD (billwarden.core.head_requests)
    return sorted(allowed)


async def _handle_http_exception(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    headers: dict[str, str] | None = getattr(exc, "headers", None)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"No route matches {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
        allowed = _allowed_methods(request)
        if allowed:
            headers = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(allowed)
    else:
        message = str(exc.detail)
    return _envelope(exc.status_code, code, message, headers=headers)


# SQLSTATE classes and codes that mean "the database is away or busy", not "the request is bad":
# connection exceptions, insufficient resources, operator intervention (a restart, a cancelled
# statement), and contention that a retry resolves
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_CODES = frozenset({"40001", "40P01", "55P03"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable or busy (answered 503, retried by
    callers such as Stripe), whatever the driver: SQLite's OperationalError, and asyncpg's
    errors, which SQLAlchemy raises as plain DBAPIError with the server's SQLSTATE."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(state, str):
            return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_CODES
        return isinstance(exc.orig, OSError) or "connection" in type(exc.orig).__name__.lower()
    # PoolTimeout: every pooled connection stayed busy for the pool's timeout (an overload)
    return isinstance(exc, ConnectionError | TimeoutError | PoolTimeout)


async def _handle_unexpected(request: Request, exc: Exception) -> OrjsonResponse:
    if database_unavailable(exc):
        return await _handle_database_unavailable(request, exc)
    # this handler runs outside the request-id middleware, whose contextvar is reset by now
    request_id = current_request_id() or getattr(request.state, "request_id", None)
    logger.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    return _envelope(
        500,
        "INTERNAL_SERVER_ERROR",
        "An unexpected error occurred. Quote the request id when reporting it.",
        {"requestId": request_id},
        headers={"x-request-id": request_id} if request_id else None,
    )


async def _handle_database_error(request: Request, exc: Exception) -> OrjsonResponse:
    # asyncpg's errors arrive as plain DBAPIError (a restart), or as the OSError of a refused
    # connection: answered here rather than by the catch-all, which Starlette re-raises to the
    # server afterwards, so that a database restart is one logged line per request, not a crash
    # report
    if database_unavailable(exc):
        return await _handle_database_unavailable(request, exc)
    return await _handle_unexpected(request, exc)


async def _handle_integrity_error(request: Request, exc: Exception) -> OrjsonResponse:
    # a uniqueness or reference rule the service did not foresee, usually a concurrent request
    logger.warning(
        "integrity conflict on %s %s: %s",
        request.method,
        request.url.path,
        type(getattr(exc, "orig", exc)).__name__,
    )
    return _envelope(
        409,
        "CONFLICT",
        "The change conflicts with the current state, perhaps changed by a request made at the "
        "same time. Nothing was changed; read the current state and retry.",
    )


async def _handle_database_unavailable(request: Request, exc: Exception) -> OrjsonResponse:
    logger.error("database unavailable on %s %s", request.method, request.url.path, exc_info=exc)
    return _envelope(
        503,
        "DATABASE_UNAVAILABLE",
        "The database is busy or unreachable. Nothing was changed; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _handle_unreadable_secret(request: Request, exc: Exception) -> OrjsonResponse:
    logger.error("stored secret cannot be decrypted on %s %s", request.method, request.url.path)
    return _envelope(
        503,
        "SECRETS_UNREADABLE",
        "A stored secret cannot be decrypted with the configured secret key; the operator must "
        "restore the previous key in BILLWARDEN_SECRET_KEY_FALLBACKS.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BillwardenError, _handle_billwarden_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(PoolTimeout, _handle_database_unavailable)
    app.add_exception_handler(IntegrityError, _handle_integrity_error)
    app.add_exception_handler(OperationalError, _handle_database_unavailable)
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(ConnectionError, _handle_database_error)
    app.add_exception_handler(TimeoutError, _handle_database_error)
    app.add_exception_handler(SecretDecryptionError, _handle_unreadable_secret)
    app.add_exception_handler(Exception, _handle_unexpected)
