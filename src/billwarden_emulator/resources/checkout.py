"""Checkout sessions: create, retrieve, list, expire, line items, and completion by helper.

A session is completed through `POST /_emulator/checkout/sessions/{id}/complete` with an outcome:
`paid` (customer and subscription or payment created, `checkout.session.completed` with
`payment_status=paid`), `card_declined` (402, session stays open) or `async_pending`
(`checkout.session.completed` with `payment_status=unpaid`; settle it later with
`POST /_emulator/checkout/sessions/{id}/async_payment` and `outcome=succeeded|failed`).
"""

from __future__ import annotations

import time

from billwarden_emulator import shapes
from billwarden_emulator.billing import lifecycle, payments
from billwarden_emulator.billing.lifecycle import ItemSpec
from billwarden_emulator.errors import card_declined, invalid_request, missing_parameter
from billwarden_emulator.forms import Params
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.listing import INCLUDABLE, newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.resources.subscriptions import trial_end_from
from billwarden_emulator.state import JSON, Account, Ctx

SESSION_LIFETIME = 24 * 3600
_UI_MODES = ("hosted_page", "embedded_page", "elements", "form", "hosted", "embedded", "custom")
_ACCEPTED = (
    "adaptive_pricing",
    "after_expiration",
    "branding_settings",
    "consent_collection",
    "custom_fields",
    "custom_text",
    "customer_update",
    "discounts",
    "excluded_payment_method_types",
    "invoice_creation",
    "name_collection",
    "optional_items",
    "origin_context",
    "payment_intent_data",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "permissions",
    "phone_number_collection",
    "saved_payment_method_options",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "tax_id_collection",
    "wallet_options",
)


def _line_price(ctx: Ctx, line: Params, index: int) -> JSON:
    price_id = line.str("price")
    if price_id is not None:
        return ctx.account.get("prices", price_id, param=f"line_items[{index}][price]")
    data = line.nested("price_data")
    if data is None:
        raise missing_parameter(f"line_items[{index}][price]")
    product_id = data.str("product")
    now = int(time.time())
    if product_id is None:
        product_data = data.nested("product_data", required=True)
        assert product_data is not None
        product = shapes.product(
            id=new_id("prod"),
            created=now,
            updated=now,
            livemode=ctx.account.livemode,
            name=product_data.str("name", required=True),
            description=product_data.str("description"),
            metadata=product_data.metadata() or {},
        )
        product_data.accept("images", "tax_code", "unit_label", "tax_details")
        product_data.finish()
        ctx.account.put("products", product)
        product_id = product["id"]
    else:
        ctx.account.get("products", product_id, param=f"line_items[{index}][price_data][product]")
    recurring = None
    recurring_params = data.nested("recurring")
    if recurring_params is not None:
        recurring = {
            "interval": recurring_params.str(
                "interval", required=True, choices=("day", "week", "month", "year")
            ),
            "interval_count": recurring_params.int("interval_count", minimum=1) or 1,
            "meter": None,
            "usage_type": "licensed",
            "trial_period_days": None,
        }
        recurring_params.finish()
    unit_amount = data.int("unit_amount", required=True, minimum=0)
    currency = data.str("currency", required=True)
    assert currency is not None
    data.accept("tax_behavior", "unit_amount_decimal")
    data.finish()
    price = shapes.price(
        id=new_id("price"),
        created=now,
        livemode=ctx.account.livemode,
        currency=currency.lower(),
        product=product_id,
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
        recurring=recurring,
        type="recurring" if recurring else "one_time",
    )
    return ctx.account.put("prices", price)


@post("/v1/checkout/sessions")
def create_session(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    mode = params.str("mode", required=True, choices=("payment", "setup", "subscription"))
    customer_id = params.str("customer")
    customer = None
    if customer_id is not None:
        customer = account.get("customers", customer_id, param="customer")
    customer_email = params.str("customer_email")
    if customer_id is not None and customer_email is not None:
        raise invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    lines: list[JSON] = []
    for index, line in enumerate(params.nested_list("line_items")):
        price = _line_price(ctx, line, index)
        quantity = line.int("quantity", minimum=1) or 1
        line.accept("adjustable_quantity", "dynamic_tax_rates", "tax_rates", "metadata")
        line.finish()
        lines.append({"price": price["id"], "quantity": quantity})
    prices = [account.collection("prices")[line["price"]] for line in lines]
    if mode != "setup" and not lines:
        raise missing_parameter("line_items")
    if mode == "subscription" and not any(p["recurring"] for p in prices):
        raise invalid_request(
            "You must provide at least one recurring price in `subscription` mode when using "
            "prices.",
            param="line_items",
        )
    if mode == "payment" and any(p["recurring"] for p in prices):
        raise invalid_request(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            param="line_items",
        )
    ui_mode = params.str("ui_mode", choices=_UI_MODES) or "hosted_page"
    embedded = ui_mode not in ("hosted_page", "hosted")
    return_url = params.str("return_url")
    redirect = params.str("redirect_on_completion", choices=("always", "if_required", "never"))
    if embedded and return_url is None and redirect != "never":
        raise missing_parameter("return_url")
    if not embedded and return_url is not None:
        raise invalid_request(
            "`return_url` is only allowed when `ui_mode` is embedded.", param="return_url"
        )
    subscription_data = params.nested("subscription_data")
    stored_subscription_data: JSON = {}
    if subscription_data is not None:
        if mode != "subscription":
            raise invalid_request(
                "You can only specify `subscription_data` in `subscription` mode.",
                param="subscription_data",
            )
        stored_subscription_data = {
            "metadata": subscription_data.metadata() or {},
            "trial_period_days": subscription_data.int("trial_period_days", minimum=1),
            "trial_end": subscription_data.int("trial_end"),
            "description": subscription_data.str("description"),
        }
        subscription_data.accept(
            "application_fee_percent",
            "billing_cycle_anchor",
            "billing_mode",
            "default_tax_rates",
            "invoice_settings",
            "on_behalf_of",
            "proration_behavior",
            "transfer_data",
            "trial_settings",
            "pending_invoice_item_interval",
        )
        subscription_data.finish()
    intent_data = _payment_intent_data(params, mode)
    now = int(time.time())
    session_id = new_id("cs_live_" if account.livemode else "cs_test_")
    total = sum(
        (price["unit_amount"] or 0) * line["quantity"]
        for price, line in zip(prices, lines, strict=True)
    )
    customer_creation = params.str("customer_creation", choices=("always", "if_required"))
    automatic_tax = params.nested("automatic_tax")
    tax_enabled = False
    if automatic_tax is not None:
        tax_enabled = bool(automatic_tax.bool("enabled"))
        automatic_tax.accept("liability")
        automatic_tax.finish()
    public_base = ctx.base_url
    session = shapes.checkout_session(
        id=session_id,
        livemode=account.livemode,
        created=now,
        expires_at=params.int("expires_at") or now + SESSION_LIFETIME,
        mode=mode,
        customer=customer_id,
        customer_email=customer_email,
        customer_creation=customer_creation
        if customer_creation is not None
        else ("if_required" if mode == "payment" and customer is None else None),
        client_reference_id=params.str("client_reference_id"),
        metadata=params.metadata() or {},
        success_url=params.str("success_url"),
        cancel_url=params.str("cancel_url"),
        ui_mode=ui_mode,
        url=None if embedded else f"{public_base}/_emulator/checkout/{session_id}",
        client_secret=f"{session_id}_secret_{random_part(24)}" if embedded else None,
        currency=prices[0]["currency"] if prices else params.str("currency"),
        amount_subtotal=total if mode != "setup" else None,
        amount_total=total if mode != "setup" else None,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if mode != "setup"
        else None,
        automatic_tax={
            "enabled": tax_enabled,
            "liability": {"type": "self"} if tax_enabled else None,
            "status": "complete" if tax_enabled else None,
            "provider": "stripe" if tax_enabled else None,
        },
        allow_promotion_codes=params.bool("allow_promotion_codes"),
        billing_address_collection=params.str(
            "billing_address_collection", choices=("auto", "required")
        ),
        locale=params.str("locale"),
        payment_method_collection=params.str(
            "payment_method_collection", choices=("always", "if_required")
        )
        or ("always" if mode == "subscription" else None),
        payment_method_types=params.strings("payment_method_types") or ["card"],
        invoice_creation={
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        }
        if mode == "payment"
        else None,
        saved_payment_method_options={
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": "disabled",
            "payment_method_save": None,
        }
        if customer is not None
        else None,
    )
    params.accept(*_ACCEPTED, "currency")
    params.finish()
    account.internal["checkout_lines"][session_id] = {
        "lines": lines,
        "subscription_data": stored_subscription_data,
        "payment_intent_data": intent_data,
    }
    account.put("checkout_sessions", session)
    return session


def _payment_intent_data(params: Params, mode: str | None) -> JSON:
    """What `payment_intent_data` sets on the payment intent a `payment` session creates."""
    data = params.nested("payment_intent_data")
    if data is None:
        return {}
    if mode != "payment":
        raise invalid_request(
            "You can only specify `payment_intent_data` in `payment` mode.",
            param="payment_intent_data",
        )
    fields: JSON = {
        "metadata": data.metadata() or {},
        "description": data.str("description"),
        "receipt_email": data.str("receipt_email"),
        "setup_future_usage": data.str("setup_future_usage", choices=("off_session", "on_session")),
        "statement_descriptor": data.str("statement_descriptor"),
        "statement_descriptor_suffix": data.str("statement_descriptor_suffix"),
    }
    # money movement between accounts (Connect) and manual capture are not emulated
    data.accept(
        "application_fee_amount",
        "capture_method",
        "on_behalf_of",
        "shipping",
        "transfer_data",
        "transfer_group",
    )
    data.finish()
    return fields


def _session_line_items(account: Account, session: JSON) -> list[JSON]:
    stored = account.internal["checkout_lines"].get(session["id"], {"lines": []})
    items = []
    for index, line in enumerate(stored["lines"]):
        price = account.collection("prices")[line["price"]]
        product = account.collection("products").get(price["product"]) or {}
        amount = (price["unit_amount"] or 0) * line["quantity"]
        items.append(
            shapes.checkout_line_item(
                id=f"li_{session['id'][-20:]}{index}",
                amount_subtotal=amount,
                amount_total=amount,
                currency=price["currency"],
                description=product.get("name"),
                price=price,
                quantity=line["quantity"],
            )
        )
    return items


def _include_line_items(account: Account, session: JSON) -> JSON:
    items = _session_line_items(account, session)
    return {
        "object": "list",
        "data": items,
        "has_more": False,
        "url": f"/v1/checkout/sessions/{session['id']}/line_items",
    }


INCLUDABLE[("checkout.session", "line_items")] = _include_line_items


def _expire_if_due(ctx: Ctx, session: JSON) -> None:
    if session["status"] == "open" and session["expires_at"] <= time.time():
        _expire(ctx.automatic(), session)


def _expire(ctx: Ctx, session: JSON) -> None:
    session["status"] = "expired"
    session["url"] = None
    ctx.emit("checkout.session.expired", session)


@get("/v1/checkout/sessions/{id}")
def retrieve_session(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    session = ctx.account.get("checkout_sessions", id, param="session")
    _expire_if_due(ctx, session)
    return session


@get("/v1/checkout/sessions/{id}/line_items")
def list_session_line_items(ctx: Ctx, params: Params, id: str) -> JSON:
    session = ctx.account.get("checkout_sessions", id, param="session")
    result = page(
        params,
        f"/v1/checkout/sessions/{id}/line_items",
        _session_line_items(ctx.account, session),
        object_name="line_item",
    )
    params.finish()
    return result


@post("/v1/checkout/sessions/{id}/expire")
def expire_session(ctx: Ctx, params: Params, id: str) -> JSON:
    session = ctx.account.get("checkout_sessions", id, param="session")
    params.finish()
    if session["status"] != "open":
        raise invalid_request(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".',
            param="session",
        )
    _expire(ctx, session)
    return session


@get("/v1/checkout/sessions")
def list_sessions(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    intent = params.str("payment_intent")
    status = params.str("status", choices=("complete", "expired", "open"))
    subscription = params.str("subscription")
    payment_link = params.str("payment_link")
    created = range_filter(params, "created")
    details = params.nested("customer_details")
    email = None
    if details is not None:
        email = details.str("email", required=True)
        details.finish()

    def keep(session: JSON) -> bool:
        return (
            (customer is None or session["customer"] == customer)
            and (intent is None or session["payment_intent"] == intent)
            and (status is None or session["status"] == status)
            and (subscription is None or session["subscription"] == subscription)
            and (payment_link is None or session["payment_link"] == payment_link)
            and (created is None or created(session["created"]))
            and (email is None or (session["customer_details"] or {}).get("email") == email)
        )

    result = page(
        params,
        "/v1/checkout/sessions",
        newest_first(ctx.account.collection("checkout_sessions"), keep),
        object_name="checkout.session",
    )
    params.finish()
    return result


# --- completion (called from the /_emulator helpers) ------------------------------------------

OUTCOMES = ("paid", "card_declined", "async_pending")


def complete_session(ctx: Ctx, session: JSON, outcome: str, *, email: str | None = None) -> JSON:
    """Finish a session as the customer would on the hosted page."""
    account = ctx.account
    ctx = ctx.automatic()
    _expire_if_due(ctx, session)
    if session["status"] != "open":
        raise invalid_request(
            f"This Checkout Session is {session['status']} and cannot be completed.",
            param="session",
        )
    stored = account.internal["checkout_lines"][session["id"]]
    prices = [account.collection("prices")[line["price"]] for line in stored["lines"]]
    # a customer on a test clock pays and starts its subscription at the clock's time
    now = account.now_for(session["customer"])
    intent_data = stored.get("payment_intent_data") or {}
    if outcome == "card_declined":
        if session["mode"] == "payment":
            intent = payments.charge_customer(
                ctx,
                customer=account.collection("customers").get(session["customer"] or ""),
                amount=session["amount_total"] or 0,
                currency=session["currency"] or "usd",
                now=now,
                decline_code="generic_decline",
                intent_fields=intent_data,
            )
            raise card_declined("generic_decline", charge=intent["latest_charge"])
        raise card_declined("generic_decline")
    pending = outcome == "async_pending"
    customer = account.collection("customers").get(session["customer"] or "")
    needs_customer = session["mode"] == "subscription" or session["customer_creation"] == "always"
    if customer is None and needs_customer:
        customer = shapes.customer(
            id=new_id("cus"),
            livemode=account.livemode,
            created=now,
            email=session["customer_email"] or email,
            invoice_prefix=random_part(8).upper(),
        )
        account.put("customers", customer)
        ctx.emit("customer.created", customer, created=now)
        session["customer"] = customer["id"]
    if session["mode"] == "subscription":
        assert customer is not None
        data = stored["subscription_data"]
        specs = [
            ItemSpec(price, line["quantity"])
            for price, line in zip(prices, stored["lines"], strict=True)
            if price["recurring"]
        ]
        trial_end = None
        if data.get("trial_end"):
            trial_end = int(data["trial_end"])
        elif data.get("trial_period_days"):
            trial_end = now + int(data["trial_period_days"]) * lifecycle.DAY
        subscription = lifecycle.start_subscription(
            ctx,
            customer=customer,
            specs=specs,
            now=now,
            metadata=data.get("metadata"),
            trial_end=trial_end,
            description=data.get("description"),
            payment="processing" if pending else "charge",
            decline_code=None,
        )
        session["subscription"] = subscription["id"]
        session["invoice"] = subscription["latest_invoice"]
    elif session["mode"] == "payment":
        intent = payments.charge_customer(
            ctx,
            customer=customer,
            amount=session["amount_total"] or 0,
            currency=session["currency"] or "usd",
            now=now,
            decline_code=None,
            mode="processing" if pending else "charge",
            intent_fields=intent_data,
        )
        session["payment_intent"] = intent["id"]
    session["status"] = "complete"
    session["url"] = None
    session["payment_status"] = (
        "no_payment_required"
        if session["mode"] == "setup" or (session["amount_total"] == 0)
        else ("unpaid" if pending else "paid")
    )
    session["customer_details"] = shapes.customer_details(
        customer, session["customer_email"] or email
    )
    ctx.emit("checkout.session.completed", session, created=now)
    return session


def settle_async_payment(ctx: Ctx, session: JSON, outcome: str) -> JSON:
    """Finish a delayed payment: `succeeded` or `failed`, then the async checkout event."""
    account = ctx.account
    ctx = ctx.automatic()
    if session["status"] != "complete" or session["payment_status"] != "unpaid":
        raise invalid_request(
            "Only a completed Checkout Session with a pending payment can be settled.",
            param="session",
        )
    now = account.now_for(session["customer"])
    decline = None if outcome == "succeeded" else "generic_decline"
    if session["mode"] == "subscription":
        invoice = account.collection("invoices")[session["invoice"]]
        intent = _processing_intent(account, invoice["id"])
        payments.settle_intent(ctx, intent, now, decline_code=decline)
        paid = payments.apply_intent_result(ctx, invoice, intent, now)
        lifecycle.after_invoice_result(ctx, invoice, paid=paid, now=now)
    else:
        intent = account.collection("payment_intents")[session["payment_intent"]]
        payments.settle_intent(ctx, intent, now, decline_code=decline)
    if decline is None:
        session["payment_status"] = "paid"
        ctx.emit("checkout.session.async_payment_succeeded", session, created=now)
    else:
        ctx.emit("checkout.session.async_payment_failed", session, created=now)
    return session


def _processing_intent(account: Account, invoice_id: str) -> JSON:
    for payment in account.collection("invoice_payments").values():
        if payment["invoice"] == invoice_id:
            intent = account.collection("payment_intents")[payment["payment"]["payment_intent"]]
            if intent["status"] == "processing":
                return intent
    raise invalid_request("This invoice has no payment in progress.")


__all__ = ["OUTCOMES", "complete_session", "settle_async_payment", "trial_end_from"]
