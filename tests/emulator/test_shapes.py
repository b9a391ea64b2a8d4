"""Shape contract: every object the emulator serves has exactly the top-level fields of Stripe's
published example (../shared/stripe/fixtures3.json), each with a compatible type.

A field may be null when the example shows null or the official SDK declares it Optional.
"""

from __future__ import annotations

import configparser
import functools
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import stripe


def _find_fixtures() -> Path:
    """Stripe's example objects live beside the project (`../shared/stripe/fixtures3.json`), not
    in it. From a local clone, look beside the checkout it was cloned from;
    BILLWARDEN_STRIPE_FIXTURES names the file explicitly."""
    relative = Path("shared") / "stripe" / "fixtures3.json"
    repo = Path(__file__).resolve().parents[2]
    candidates = []
    if explicit := os.environ.get("BILLWARDEN_STRIPE_FIXTURES"):
        candidates.append(Path(explicit))
    candidates.append(repo.parent / relative)
    git_config = configparser.ConfigParser()
    git_config.read(repo / ".git" / "config")
    origin = git_config.get('remote "origin"', "url", fallback="")
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / relative)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "Stripe's fixtures3.json was not found; looked at "
        + ", ".join(str(c) for c in candidates)
        + " (set BILLWARDEN_STRIPE_FIXTURES)"
    )


SDK_CLASSES: dict[str, type[Any]] = {
    "account": stripe.Account,
    "balance": stripe.Balance,
    "billing.meter_event": stripe.billing.MeterEvent,
    "billing_portal.configuration": stripe.billing_portal.Configuration,
    "billing_portal.session": stripe.billing_portal.Session,
    "charge": stripe.Charge,
    "checkout.session": stripe.checkout.Session,
    "customer": stripe.Customer,
    "event": stripe.Event,
    "invoice": stripe.Invoice,
    "invoice_payment": stripe.InvoicePayment,
    "item": stripe.LineItem,
    "line_item": stripe.InvoiceLineItem,
    "payment_intent": stripe.PaymentIntent,
    "price": stripe.Price,
    "product": stripe.Product,
    "refund": stripe.Refund,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "subscription_schedule": stripe.SubscriptionSchedule,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
    "webhook_endpoint": stripe.WebhookEndpoint,
}


@functools.cache
def fixtures() -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = orjson.loads(_find_fixtures().read_bytes())["resources"]
    return resources


def _optional_fields(resource: str) -> set[str]:
    cls = SDK_CLASSES.get(resource)
    if cls is None:
        return set()
    annotations: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations.update(getattr(base, "__annotations__", {}))
    return {
        name
        for name, hint in annotations.items()
        if "Optional" in repr(hint) or "NoneType" in repr(hint)
    }


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape_problems(resource: str, served: dict[str, Any]) -> list[str]:
    expected = fixtures()[resource]
    optional = _optional_fields(resource)
    problems = [f"missing {name}" for name in expected if name not in served]
    problems += [f"extra {name}" for name in served if name not in expected]
    for name, example in expected.items():
        if name not in served or example is None:
            continue
        value = served[name]
        if value is None:
            if name not in optional:
                problems.append(f"{name} is null but must be {_kind(example)}")
        elif _kind(value) != _kind(example):
            problems.append(f"{name} is {_kind(value)}, expected {_kind(example)}")
    return problems


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def served(raw: httpx.Client) -> dict[str, dict[str, Any]]:
    """One object of every resource the emulator serves, as it went over the wire."""
    objects: dict[str, dict[str, Any]] = {}
    clock = _ok(raw.post("/v1/test_helpers/test_clocks", data={"frozen_time": int(time.time())}))
    customer = _ok(
        raw.post("/v1/customers", data={"email": "shape@example.com", "test_clock": clock["id"]})
    )
    product = _ok(raw.post("/v1/products", data={"name": "Shape"}))
    price = _ok(
        raw.post(
            "/v1/prices",
            data={
                "product": product["id"],
                "unit_amount": "1500",
                "currency": "usd",
                "recurring[interval]": "month",
            },
        )
    )
    session = _ok(
        raw.post(
            "/v1/checkout/sessions",
            data={
                "mode": "subscription",
                "customer": customer["id"],
                "line_items[0][price]": price["id"],
                "line_items[0][quantity]": "1",
                "success_url": "https://example.com/ok",
            },
        )
    )
    _ok(
        raw.post(f"/_emulator/checkout/sessions/{session['id']}/complete", data={"outcome": "paid"})
    )
    session = _ok(raw.get(f"/v1/checkout/sessions/{session['id']}"))
    subscription = _ok(raw.get(f"/v1/subscriptions/{session['subscription']}"))
    item_id = subscription["items"]["data"][0]["id"]
    invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
    payment = _ok(raw.get("/v1/invoice_payments", params={"invoice": invoice["id"]}))["data"][0]
    intent = _ok(raw.get(f"/v1/payment_intents/{payment['payment']['payment_intent']}"))
    endpoint = _ok(
        raw.post(
            "/v1/webhook_endpoints",
            data={"url": "https://example.com/hook", "enabled_events[0]": "*"},
        )
    )
    objects["test_helpers.test_clock"] = _ok(raw.get(f"/v1/test_helpers/test_clocks/{clock['id']}"))
    objects["customer"] = _ok(raw.get(f"/v1/customers/{customer['id']}"))
    objects["product"] = _ok(raw.get(f"/v1/products/{product['id']}"))
    objects["price"] = _ok(raw.get(f"/v1/prices/{price['id']}"))
    objects["checkout.session"] = session
    objects["item"] = _ok(raw.get(f"/v1/checkout/sessions/{session['id']}/line_items"))["data"][0]
    objects["subscription"] = subscription
    objects["subscription_item"] = _ok(raw.get(f"/v1/subscription_items/{item_id}"))
    objects["invoice"] = invoice
    objects["line_item"] = _ok(raw.get(f"/v1/invoices/{invoice['id']}/lines"))["data"][0]
    objects["invoice_payment"] = payment
    objects["payment_intent"] = intent
    refund = _ok(raw.post("/v1/refunds", data={"charge": intent["latest_charge"], "amount": "100"}))
    objects["refund"] = _ok(raw.get(f"/v1/refunds/{refund['id']}"))
    objects["charge"] = _ok(raw.get(f"/v1/charges/{intent['latest_charge']}"))
    objects["billing_portal.session"] = _ok(
        raw.post(
            "/v1/billing_portal/sessions",
            data={"customer": customer["id"], "return_url": "https://example.com/account"},
        )
    )
    objects["webhook_endpoint"] = _ok(raw.get(f"/v1/webhook_endpoints/{endpoint['id']}"))
    event_id = _ok(raw.get("/v1/events", params={"limit": 1}))["data"][0]["id"]
    objects["event"] = _ok(raw.get(f"/v1/events/{event_id}"))
    objects["balance"] = _ok(raw.get("/v1/balance"))
    objects["account"] = _ok(raw.get("/v1/account"))
    _ok(  # a meter event needs an active meter with its event_name
        raw.post(
            "/v1/billing/meters",
            data={
                "display_name": "API requests",
                "event_name": "api_requests",
                "default_aggregation[formula]": "sum",
            },
        )
    )
    objects["billing.meter_event"] = _ok(
        raw.post(
            "/v1/billing/meter_events",
            data={
                "event_name": "api_requests",
                "payload[stripe_customer_id]": customer["id"],
                "payload[value]": "3",
            },
        )
    )
    objects["deleted_webhook_endpoint"] = _ok(raw.delete(f"/v1/webhook_endpoints/{endpoint['id']}"))
    spare = _ok(raw.post("/v1/products", data={"name": "Spare"}))
    objects["deleted_product"] = _ok(raw.delete(f"/v1/products/{spare['id']}"))
    objects["deleted_customer"] = _ok(raw.delete(f"/v1/customers/{customer['id']}"))
    objects["deleted_test_helpers.test_clock"] = _ok(
        raw.delete(f"/v1/test_helpers/test_clocks/{clock['id']}")
    )
    return objects


class TestShapeContract:
    def test_every_served_resource_matches_stripes_example(
        self, served: dict[str, dict[str, Any]]
    ) -> None:
        problems = {
            resource: found
            for resource, obj in served.items()
            if (found := shape_problems(resource, obj))
        }
        assert problems == {}
        assert len(served) == 24

    def test_created_webhook_endpoint_adds_only_the_secret(self, raw: httpx.Client) -> None:
        created = _ok(
            raw.post(
                "/v1/webhook_endpoints",
                data={"url": "https://example.com/hook", "enabled_events[0]": "invoice.paid"},
            )
        )
        assert shape_problems("webhook_endpoint", created) == ["extra secret"]
        assert created["secret"].startswith("whsec_")

    def test_the_checker_rejects_a_wrong_shape(self) -> None:
        bad = dict(fixtures()["price"])
        bad.pop("currency")
        bad["unit_amount"] = "2000"
        bad["surprise"] = 1
        assert sorted(shape_problems("price", bad)) == [
            "extra surprise",
            "missing currency",
            "unit_amount is string, expected number",
        ]
