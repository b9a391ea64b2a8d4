"""In-memory state: one `Account` per API key, events, and the `Ctx` handlers work through.

Objects are stored as the exact dicts the API returns, so reads serialize them without copying.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from billwarden_emulator.errors import resource_missing
from billwarden_emulator.ids import new_id

JSON = dict[str, Any]

# id prefix -> (collection, object name used in "No such ..." messages)
PREFIXES: dict[str, tuple[str, str]] = {
    "cus": ("customers", "customer"),
    "prod": ("products", "product"),
    "price": ("prices", "price"),
    "cs": ("checkout_sessions", "checkout.session"),
    "sub": ("subscriptions", "subscription"),
    "in": ("invoices", "invoice"),
    "inpay": ("invoice_payments", "invoice_payment"),
    "pi": ("payment_intents", "payment_intent"),
    "ch": ("charges", "charge"),
    "re": ("refunds", "refund"),
    "evt": ("events", "event"),
    "we": ("webhook_endpoints", "webhook_endpoint"),
    "clock": ("test_clocks", "test_clock"),
    "bps": ("portal_sessions", "billing_portal.session"),
    "ii": ("invoiceitems", "invoiceitem"),
    "cn": ("credit_notes", "credit_note"),
    "promo": ("promotion_codes", "promotion_code"),
    "di": ("discounts", "discount"),
    # coupon ids carry no prefix (any id the caller chooses); this key only names the collection
    "coupon": ("coupons", "coupon"),
    "pm": ("payment_methods", "payment_method"),
    "seti": ("setup_intents", "setup_intent"),
    "card": ("cards", "source"),
}
COLLECTION_NAMES = {collection: name for collection, name in PREFIXES.values()}


class FaultsLike(Protocol):
    def configure(self, spec: dict[str, Any]) -> None: ...
    def reset(self) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def take_request_fault(self, method: str, path: str) -> int | None: ...
    def latency_for(self, method: str, path: str) -> float: ...


class DispatcherLike(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def publish(
        self,
        account_key: str,
        event: dict[str, Any],
        endpoints: Sequence[Any],
        faults: Any,
    ) -> None: ...
    def delivery_log(self, account_key: str) -> list[dict[str, Any]]: ...
    def delivery_summary(self, account_key: str) -> dict[str, Any]: ...
    def reset(self, account_key: str) -> None: ...


TargetFactory = Callable[[str, str, tuple[str, ...], tuple[str, ...]], Any]


def copy_json(value: JSON) -> JSON:
    """A deep copy of a JSON-shaped dict (faster than copy.deepcopy)."""
    result: JSON = orjson.loads(orjson.dumps(value))
    return result


def previous_attributes(before: JSON, after: JSON) -> JSON:
    """Stripe's `data.previous_attributes`: changed keys with their old values; arrays whole."""
    changed: JSON = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            changed[key] = previous_attributes(old, new)
        else:
            changed[key] = old
    for key in after:
        if key not in before:
            changed[key] = None
    return changed


# collections whose ids need not carry a prefix (`find` looks them up by id alone)
UNPREFIXED = ("coupons",)


class Account:
    """Everything one API key sees."""

    def __init__(self, key: str, faults: FaultsLike) -> None:
        self.key = key
        self.livemode = key.startswith(("sk_live_", "rk_live_"))
        self.id = "acct_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        self.created = int(time.time())
        self.faults = faults
        self.collections: dict[str, dict[str, JSON]] = {c: {} for c, _ in PREFIXES.values()}
        self.deleted: dict[str, JSON] = {}
        # Emulator bookkeeping that is not part of any Stripe object (kept in snapshots).
        self.internal: JSON = {
            "pending_lines": {},  # subscription id -> proration lines for the next invoice
            "trial_will_end_sent": [],  # subscription ids
            "meter_identifiers": {},  # identifier -> meter event
            "meter_totals": {},  # "event_name:customer" -> summed value
            "delivered": {},  # event id -> endpoint ids delivered successfully
            "invoice_sequence": 0,
            "secrets": {},  # webhook endpoint id -> signing secrets
            "checkout_lines": {},  # checkout session id -> line items
        }
        self.idempotency: dict[str, tuple[str, int, bytes]] = {}

    def collection(self, name: str) -> dict[str, JSON]:
        return self.collections[name]

    def get(self, collection: str, object_id: str, *, param: str = "id") -> JSON:
        found = self.collections[collection].get(object_id)
        if found is None:
            raise resource_missing(COLLECTION_NAMES[collection], object_id, param=param)
        return found

    def find(self, object_id: str) -> JSON | None:
        """Look any object up by id (used by `expand`)."""
        prefix = object_id.split("_", 1)[0]
        entry = PREFIXES.get(prefix)
        if entry is None:
            # coupons may have ids of the user's choosing, without a prefix
            for collection in UNPREFIXED:
                found = self.collections.get(collection, {}).get(object_id)
                if found is not None:
                    return found
            return None
        found = self.collections[entry[0]].get(object_id)
        return found if found is not None else self.deleted.get(object_id)

    def put(self, collection: str, obj: JSON) -> JSON:
        self.collections[collection][obj["id"]] = obj
        return obj

    def now_for(self, customer_id: str | None) -> int:
        """Current time for a customer: its test clock's frozen time, else the wall clock."""
        if customer_id is not None:
            customer = self.collections["customers"].get(customer_id)
            if customer is not None and customer.get("test_clock"):
                clock = self.collections["test_clocks"].get(customer["test_clock"])
                if clock is not None:
                    return int(clock["frozen_time"])
        return int(time.time())

    def next_invoice_number(self) -> int:
        self.internal["invoice_sequence"] += 1
        number: int = self.internal["invoice_sequence"]
        return number

    def clear(self) -> None:
        for objects in self.collections.values():
            objects.clear()
        self.deleted.clear()
        self.idempotency.clear()
        self.internal = Account(self.key, self.faults).internal


@dataclass
class Store:
    """All accounts of one emulator instance, plus the event pipeline."""

    faults_factory: Callable[[], FaultsLike]
    dispatcher: DispatcherLike
    make_target: TargetFactory
    api_version: str
    accounts: dict[str, Account] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    on_change: Callable[[], None] | None = None

    def account_for(self, key: str) -> Account:
        account = self.accounts.get(key)
        if account is None:
            account = Account(key, self.faults_factory())
            self.accounts[key] = account
        return account

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def emit(
        self,
        account: Account,
        event_type: str,
        obj: JSON,
        previous: JSON | None = None,
        *,
        created: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        targets = [
            self.make_target(
                endpoint["id"],
                endpoint["url"],
                tuple(account.internal.get("secrets", {}).get(endpoint["id"], [])),
                tuple(endpoint["enabled_events"]),
            )
            for endpoint in account.collections["webhook_endpoints"].values()
            if endpoint["status"] == "enabled"
            and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
        ]
        data: JSON = {"object": copy_json(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event: JSON = {
            "api_version": self.api_version,
            "created": created if created is not None else int(time.time()),
            "data": data,
            "id": new_id("evt"),
            "livemode": account.livemode,
            "object": "event",
            "pending_webhooks": len(targets),
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": event_type,
        }
        account.put("events", event)
        if targets:
            self.dispatcher.publish(account.key, dict(event), targets, account.faults)
        return event

    def on_delivery_result(
        self, account_key: str, event_id: str, endpoint_id: str, success: bool
    ) -> None:
        account = self.accounts.get(account_key)
        if account is None or not success:
            return
        event = account.collections["events"].get(event_id)
        if event is None:
            return
        delivered: list[str] = account.internal["delivered"].setdefault(event_id, [])
        if endpoint_id not in delivered:
            delivered.append(endpoint_id)
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
            self.changed()


@dataclass
class Ctx:
    """What a handler needs: the store, the caller's account and the request's identity."""

    store: Store
    account: Account
    request_id: str | None
    idempotency_key: str | None
    base_url: str

    def emit(
        self,
        event_type: str,
        obj: JSON,
        previous: JSON | None = None,
        *,
        created: int | None = None,
    ) -> JSON:
        return self.store.emit(
            self.account,
            event_type,
            obj,
            previous,
            created=created,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
        )

    def automatic(self) -> Ctx:
        """The same context for changes Stripe makes on its own (`request.id` null)."""
        return replace(self, request_id=None, idempotency_key=None)
