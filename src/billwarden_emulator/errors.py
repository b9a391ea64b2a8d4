"""Stripe's error envelope `{"error": {"type", "code", "message", "param"}}` and statuses."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered in Stripe's envelope."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None
) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def unknown_parameter(name: str) -> StripeError:
    return invalid_request(
        f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
    )


def missing_parameter(name: str) -> StripeError:
    return invalid_request(f"Missing required param: {name}.", param=name, code="parameter_missing")


def invalid_value(name: str, message: str) -> StripeError:
    return invalid_request(message, param=name, code="parameter_invalid")


def resource_missing(object_name: str, object_id: str, *, param: str = "id") -> StripeError:
    return StripeError(
        404,
        "invalid_request_error",
        f"No such {object_name}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def authentication_error(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def card_declined(
    decline_code: str = "generic_decline", *, charge: str | None = None
) -> StripeError:
    extra: dict[str, Any] = {"decline_code": decline_code}
    if charge is not None:
        extra["charge"] = charge
    message = (
        "Your card has insufficient funds."
        if decline_code == "insufficient_funds"
        else "Your card was declined."
    )
    return StripeError(402, "card_error", message, code="card_declined", extra=extra)


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "invalid_request_error",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of "
        "your requests.",
        code="rate_limit",
    )


def api_error() -> StripeError:
    return StripeError(500, "api_error", "An unknown error occurred on Stripe's servers.")


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were first "
        f"used with. Try using a key other than '{key}' if you meant to execute a different "
        "request.",
    )
