"""Checkout's refusals, each with its stable code."""

from __future__ import annotations

from billwarden.errors import Conflict, Forbidden, InvalidInput, NotFound


class UnknownPurchaseKey(InvalidInput):
    code = "UNKNOWN_PURCHASE_KEY"


class NotSelfServe(InvalidInput):
    code = "NOT_SELF_SERVE"


class PriceNotAllowed(InvalidInput):
    code = "PRICE_NOT_ALLOWED"


class NothingToBuy(InvalidInput):
    code = "NO_PURCHASE_KEY"


class SubjectRequired(InvalidInput):
    code = "VALIDATION_ERROR"


class SubjectMismatch(Forbidden):
    code = "SUBJECT_MISMATCH"


class FamilyConflict(Conflict):
    code = "FAMILY_CONFLICT"


class AlreadySubscribed(Conflict):
    code = "ALREADY_SUBSCRIBED"


class PriceNotResolved(Conflict):
    code = "PRICE_NOT_RESOLVED"


class CheckoutSessionNotFound(NotFound):
    code = "CHECKOUT_SESSION_NOT_FOUND"
