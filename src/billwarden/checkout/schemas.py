"""Wire shapes for checkout (camelCase)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from billwarden.catalog.service.document import PURCHASE_KEY_PATTERN
from billwarden.core.subjects import SubjectType
from billwarden.entitlements.schemas import EntitlementResponse
from billwarden.kit.schemas import CamelModel
from billwarden.kit.subjects import SubjectIdField, SubjectTypeField

PurchaseKey = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=f"^(?:{PURCHASE_KEY_PATTERN})$")
]
PriceId = Annotated[
    str, StringConstraints(min_length=7, max_length=255, pattern=r"^price_[A-Za-z0-9]+$")
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]
SessionId = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class SubjectBody(CamelModel):
    subject_type: SubjectTypeField = SubjectType.USER
    subject_id: SubjectIdField = None


class CheckoutSessionCreate(SubjectBody):
    """What to buy: one of `purchaseKey`, `purchaseKeys` or `priceId`; none buys the catalog's
    `default_purchase_key`."""

    purchase_key: PurchaseKey | None = None
    purchase_keys: list[PurchaseKey] | None = Field(default=None, min_length=1, max_length=10)
    price_id: PriceId | None = None
    ui_mode: Literal["hosted", "embedded"] = "hosted"
    success_url: Url | None = None
    cancel_url: Url | None = None

    @model_validator(mode="after")
    def _one_choice(self) -> CheckoutSessionCreate:
        given = [
            name
            for name, value in (
                ("purchaseKey", self.purchase_key),
                ("purchaseKeys", self.purchase_keys),
                ("priceId", self.price_id),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one of purchaseKey, purchaseKeys or priceId, not {given}")
        if self.purchase_keys is not None and len(set(self.purchase_keys)) != len(
            self.purchase_keys
        ):
            raise ValueError("purchaseKeys names a plan twice")
        return self


class CheckoutSessionCreated(CamelModel):
    session_id: str
    url: str | None = Field(default=None, description="The hosted page (uiMode hosted).")
    client_secret: str | None = Field(
        default=None, description="For Stripe.js embedded checkout (uiMode embedded)."
    )


class CustomerCreate(SubjectBody):
    pass


class CustomerRead(CamelModel):
    customer_id: str
    created: bool


class SessionStatus(CamelModel):
    session_id: str
    status: str | None
    payment_status: str | None
    customer_email: str | None
    subscription_id: str | None
    customer_id: str | None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> SessionStatus:
        """A Stripe checkout session's status, as check-session answers it."""
        details = obj.get("customer_details")
        email = obj.get("customer_email") or (
            details.get("email") if isinstance(details, dict) else None
        )
        subscription = obj.get("subscription")
        customer = obj.get("customer")
        return cls(
            session_id=str(obj["id"]),
            status=obj.get("status"),
            payment_status=obj.get("payment_status"),
            customer_email=email,
            subscription_id=subscription if isinstance(subscription, str) else None,
            customer_id=customer if isinstance(customer, str) else None,
        )


class ReconcileSession(SubjectBody):
    session_id: SessionId


class Reconciled(EntitlementResponse):
    """The session's outcome and the subject's entitlement after applying it."""

    session_id: str
    already_processed: bool = Field(
        description="True when the session had been applied already (by its webhook, or an "
        "earlier call)."
    )
    status: str | None
    payment_status: str | None
