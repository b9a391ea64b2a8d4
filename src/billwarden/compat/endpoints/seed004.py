"""Seed 004's routes (docs/migrating/004-openapi-billing.md): the OpenAPI'd billing service under
`/api/v1`, for an organization named by the Bearer JWT's `organization_id` claim.

`POST /api/v1/billing/checkout` sells the catalog's `default_purchase_key` through the canonical
checkout service, as `/api/v1/payments/stripe/checkout-session` does without a plan named. Its
other routes are served elsewhere: `POST /api/v1/billing/webhook` (compat/endpoints/webhooks.py)
and `GET /api/v1/billing/usage` (usage). All answer seed 004's ErrorResponse codes: 401
UNAUTHORIZED, 403 FORBIDDEN, 400 VALIDATION_ERROR."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from billwarden.auth import end_user_subject
from billwarden.checkout.schemas import Url
from billwarden.checkout.service import CheckoutRequest, CheckoutService
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import InvalidInput, error_responses
from billwarden.kit.schemas import CamelModel
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.usage.endpoints import SEED_004_TAG, BearerEndUser

router = APIRouter(prefix="/api/v1/billing", tags=[SEED_004_TAG])
routers = [router]


class CheckoutRequestBody(CamelModel):
    """Seed 004's CheckoutRequest: where Stripe sends the payer back (defaults: the catalog's
    checkout URLs, else billwarden's public URL)."""

    success_url: Url | None = None
    cancel_url: Url | None = None


class CheckoutResponse(CamelModel):
    checkout_url: str = Field(description="Stripe's hosted checkout page.")


@router.post(
    "/checkout",
    status_code=201,
    response_model=CheckoutResponse,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Start a Stripe Checkout of the catalog's default plan for the token's organization",
)
async def create_billing_checkout_session(
    user: BearerEndUser,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
    body: CheckoutRequestBody | None = None,
) -> CheckoutResponse:
    """A token without `organization_id`: 400 VALIDATION_ERROR."""
    if not user.organization_id:
        raise InvalidInput(
            "organization_id is required in token.", details={"claim": "organization_id"}
        )
    body = body or CheckoutRequestBody()
    service = CheckoutService(session, gateway, box, user.project_id, user.mode)
    created = await service.create_session(
        end_user_subject(user),  # the organization, as the claim names it
        CheckoutRequest(
            purchase_keys=[],  # the catalog's default_purchase_key
            price_id=None,
            ui_mode="hosted",
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        ),
        settings,
    )
    assert created.url is not None  # a hosted session has its page
    return CheckoutResponse(checkout_url=created.url)
