"""Seed 003's routes (docs/migrating/003-accounts-service.md): the accounts service's checkout by
Stripe price, billing portal and subscription list, for the signed-in end user.

They call the canonical checkout and self-service services as
`/api/v1/payments/stripe/checkout-session` (with `priceId`), `/customer-portal` and
`/my-subscription` do. Its webhook, `/api/billing/stripe/webhook`, is one of the unscoped webhook
routes (compat/endpoints/webhooks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from billwarden.auth import BillingPrincipal, EndUserCaller
from billwarden.checkout.schemas import Url
from billwarden.checkout.service import CheckoutRequest, CheckoutService
from billwarden.compat.endpoints.seeds import SEED_003
from billwarden.core.subjects import Subject
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.schemas import CamelModel
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.subscriptions.schemas import SubscriptionRead
from billwarden.subscriptions.service.self_service import SelfService

router = APIRouter(prefix="/api/auth", tags=[SEED_003])
routers = [router]
# the accounts service's allowlist names prices like `price_xstream_paygo`: such a name is
# answered PRICE_NOT_ALLOWED (or sold, when listed and Stripe has it), not refused as malformed
PriceId = Annotated[
    str, StringConstraints(min_length=7, max_length=255, pattern=r"^price_[A-Za-z0-9_]+$")
]


def _spelled(snake: str, camel: str) -> AliasChoices:
    """The accounts service's snake_case field, or its camelCase twin."""
    return AliasChoices(snake, camel)


class StripeCheckout(BaseModel):
    """`price_id` (or `priceId`): the Stripe price to sell; the return URLs are optional."""

    model_config = ConfigDict(extra="forbid")

    price_id: PriceId = Field(validation_alias=_spelled("price_id", "priceId"))
    success_url: Url | None = Field(
        default=None, validation_alias=_spelled("success_url", "successUrl")
    )
    cancel_url: Url | None = Field(
        default=None, validation_alias=_spelled("cancel_url", "cancelUrl")
    )


class StripeCheckoutCreated(CamelModel):
    url: str | None = Field(description="Stripe's hosted checkout page.")
    session_id: str


class StripePortal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_url: Url | None = Field(
        default=None, validation_alias=_spelled("return_url", "returnUrl")
    )


class StripePortalOpened(BaseModel):
    url: str


class AccountSubscription(CamelModel):
    provider: Literal["stripe"] = "stripe"
    id: str = Field(description="Stripe's subscription id.")
    status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool


class AccountSubscriptions(BaseModel):
    subscriptions: list[AccountSubscription] = Field(description="Every one, newest first.")


def _subject(caller: BillingPrincipal) -> Subject:
    subject = caller.own_subject
    assert subject is not None  # EndUserCaller: always an end user
    return subject


@router.post(
    "/stripe/checkout",
    response_model=StripeCheckoutCreated,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Start a Stripe Checkout for a price of the catalog or of STRIPE_ALLOWED_PRICE_IDS",
)
async def stripe_checkout(
    body: StripeCheckout,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
) -> StripeCheckoutCreated:
    """A price outside the catalog and STRIPE_ALLOWED_PRICE_IDS: 400 PRICE_NOT_ALLOWED."""
    service = CheckoutService(session, gateway, box, caller.project_id, caller.mode)
    created = await service.create_session(
        _subject(caller),
        CheckoutRequest(
            purchase_keys=[],
            price_id=body.price_id,
            ui_mode="hosted",
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        ),
        settings,
    )
    return StripeCheckoutCreated(url=created.url, session_id=created.session_id)


@router.post(
    "/stripe/portal",
    response_model=StripePortalOpened,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="A Stripe billing-portal session for the signed-in user's customer",
)
async def stripe_portal(
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
    body: StripePortal | None = None,
) -> StripePortalOpened:
    """Before any checkout the user has no customer: 404 NO_CUSTOMER."""
    return_url = (body.return_url if body else None) or f"{settings.public_url}/billing"
    service = SelfService(session, gateway, box, caller.project_id, caller.mode)
    return StripePortalOpened(url=await service.portal(_subject(caller), return_url))


@router.get(
    "/subscriptions",
    response_model=AccountSubscriptions,
    responses=error_responses(401, 403),
    summary="The signed-in user's Stripe subscriptions, from the mirror the webhooks keep",
)
async def subscriptions(
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> AccountSubscriptions:
    service = SelfService(session, gateway, box, caller.project_id, caller.mode)
    plans = await service.plans()
    reads = [
        SubscriptionRead.of(row, plans) for row in await service.subscriptions(_subject(caller))
    ]
    return AccountSubscriptions(
        subscriptions=[
            AccountSubscription(
                id=read.id,
                status=read.status,
                price_id=read.price_id,
                current_period_end=read.current_period_end,
                cancel_at_period_end=read.cancel_at_period_end,
            )
            for read in reads
        ]
    )
