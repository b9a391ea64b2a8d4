"""The hosted checkout page's own routes, which the Stripe CLI (`stripe trigger
checkout.session.completed`) uses to pay a checkout session: `GET /v1/payment_pages/{session}`
and `POST /v1/payment_pages/{session}/confirm` with a payment method.

Stripe does not document them; the emulator answers what the CLI needs. A card pays at once
(`checkout.session.completed`, `payment_status=paid`) or is declined (`402 card_error`, the session
stays open); a SEPA debit completes the session unpaid, then settles at once:
`checkout.session.async_payment_succeeded`, or `..._failed` for the failing test IBANs (the slow
one stays pending).
"""

from __future__ import annotations

from billwarden_emulator.errors import invalid_request
from billwarden_emulator.forms import Params
from billwarden_emulator.resources import get, post
from billwarden_emulator.resources import payment_methods as methods
from billwarden_emulator.resources.checkout import complete_session, settle_async_payment
from billwarden_emulator.state import JSON, Ctx


def _page(session: JSON) -> JSON:
    return {
        "id": session["id"],
        "object": "checkout.session",
        "amount_total": session["amount_total"],
        "currency": session["currency"],
        "customer": session["customer"],
        "customer_email": session["customer_email"],
        "livemode": session["livemode"],
        "mode": session["mode"],
        "payment_method_types": session["payment_method_types"],
        "payment_status": session["payment_status"],
        "status": session["status"],
        "success_url": session["success_url"],
        "cancel_url": session["cancel_url"],
    }


@get("/v1/payment_pages/{id}")
def retrieve_payment_page(ctx: Ctx, params: Params, id: str) -> JSON:
    params.accept("key", "client_secret")
    params.finish()
    return _page(ctx.account.get("checkout_sessions", id, param="session"))


@post("/v1/payment_pages/{id}/confirm")
def confirm_payment_page(ctx: Ctx, params: Params, id: str) -> JSON:
    session = ctx.account.get("checkout_sessions", id, param="session")
    method_id = params.str("payment_method", required=True)
    assert method_id is not None
    expected = params.int("expected_amount")
    params.accept(
        "key",
        "client_secret",
        "eid",
        "expected_payment_method_type",
        "consent",
        "return_url",
        "shipping",
        "tax_id_collection",
        "version",
    )
    params.finish()
    method = methods.resolve_payment_method(ctx, method_id, param="payment_method")
    total = session["amount_total"]
    if expected is not None and total is not None and expected != total:
        raise invalid_request(
            f"The expected amount ({expected}) does not match the amount of this Checkout "
            f"Session ({total}).",
            param="expected_amount",
        )
    email = method["billing_details"]["email"]
    if method["type"] == "sepa_debit":
        complete_session(ctx, session, "async_pending", email=email)
        iban = methods.test_iban(ctx, method["id"])
        if iban not in methods.SLOW_IBANS:
            outcome = "failed" if iban in methods.FAILING_IBANS else "succeeded"
            settle_async_payment(ctx, session, outcome)
        return _page(session)
    outcome = methods.payment_method_outcome(ctx, method["id"])
    if outcome == "succeeded":
        complete_session(ctx, session, "paid", email=email)
        return _page(session)
    decline = methods.payment_method_decline(ctx, method["id"])
    if outcome == "declined" and decline == ("card_declined", "generic_decline"):
        complete_session(ctx, session, "card_declined", email=email)  # raises 402
    raise methods.card_error(*(decline or ("card_declined", "generic_decline")))
