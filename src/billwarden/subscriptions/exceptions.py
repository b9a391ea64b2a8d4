"""Self-service refusals, each with its stable code."""

from __future__ import annotations

from billwarden.errors import Conflict, InvalidInput, NotFound


class SubscriptionNotFound(NotFound):
    code = "SUBSCRIPTION_NOT_FOUND"


class SubscriptionRequired(InvalidInput):
    code = "SUBSCRIPTION_REQUIRED"


class NoCustomer(NotFound):
    code = "NO_CUSTOMER"


class BundledSubscription(Conflict):
    code = "BUNDLED_SUBSCRIPTION"


class NotCancellable(Conflict):
    code = "NOT_CANCELLABLE"


class NotResumable(Conflict):
    code = "NOT_RESUMABLE"


class SubscriptionEnded(Conflict):
    code = "SUBSCRIPTION_ENDED"


class FamilyMismatch(Conflict):
    code = "FAMILY_MISMATCH"


class AlreadyOnPlan(Conflict):
    code = "ALREADY_ON_PLAN"


class UnknownPurchaseKey(InvalidInput):
    code = "UNKNOWN_PURCHASE_KEY"


class NotSelfServe(InvalidInput):
    code = "NOT_SELF_SERVE"


class PriceNotResolved(Conflict):
    code = "PRICE_NOT_RESOLVED"


class StripeNotConfigured(Conflict):
    code = "STRIPE_NOT_CONFIGURED"
