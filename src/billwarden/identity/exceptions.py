"""Identity's errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import (
    BillwardenError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)


class Unauthenticated(Unauthorized):
    code = "UNAUTHENTICATED"


class InvalidCredentials(Unauthenticated):
    code = "INVALID_CREDENTIALS"
    keeps_changes = True  # the failed sign-in stays counted for throttling


class TooManyAttempts(BillwardenError):
    code = "TOO_MANY_ATTEMPTS"
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(
            message,
            details={"retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class CsrfFailed(Forbidden):
    code = "CSRF_FAILED"


class UserExists(Conflict):
    code = "USER_EXISTS"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"


class WrongPassword(InvalidInput):
    code = "WRONG_PASSWORD"
    keeps_changes = True  # a wrong current password counts as a failed sign-in


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"
