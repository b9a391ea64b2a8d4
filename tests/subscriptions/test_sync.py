"""Applying Stripe's state through the gateway: customers re-fetched like subscriptions, and what
is taken from an event when Stripe no longer has its object."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.crypto import SecretBox
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.service import EventStamp, MirrorService
from billwarden.subscriptions.service.sync import SubscriptionSync
from tests.checkout.factories import Shop, Shops


def event(obj: dict[str, Any], event_type: str, created: int) -> dict[str, Any]:
    return {"id": f"evt_{event_type}_{created}", "created": created, "type": event_type}


async def setup(
    app: FastAPI, session: AsyncSession, secret_box: SecretBox, settings: Settings
) -> tuple[Shop, SubscriptionSync]:
    shop = await Shops(session, secret_box, settings).open()
    gateway: StripeGateway = app.state.stripe_gateway
    return shop, SubscriptionSync(session, gateway, secret_box, shop.project.id, Mode.TEST)


class TestCustomers:
    async def test_a_deletion_stays_whatever_order_the_same_second_brings(
        self, app: FastAPI, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        shop, sync = await setup(app, session, secret_box, settings)
        customer = shop.stripe.v1.customers.create({"email": "old@example.test"})
        subject = Subject(SubjectType.USER, "ada")
        await MirrorService(session).map_customer(
            shop.project.id, Mode.TEST, subject, customer.id, "old@example.test"
        )
        shop.stripe.v1.customers.update(customer.id, {"email": "new@example.test"})
        shop.stripe.v1.customers.delete(customer.id)
        second = int(time.time())
        # the deletion first, then the older update of the same second
        deleted = {"id": customer.id, "object": "customer", "deleted": True}
        await sync.apply_customer(deleted, EventStamp.of(event(deleted, "deleted", second)))
        updated = {"id": customer.id, "object": "customer", "email": "new@example.test"}
        await sync.apply_customer(updated, EventStamp.of(event(updated, "updated", second)))
        row = await MirrorService(session).customer_of(shop.project.id, Mode.TEST, subject)
        assert row is not None and row.deleted is True

    async def test_an_update_takes_stripes_current_email(
        self, app: FastAPI, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        shop, sync = await setup(app, session, secret_box, settings)
        customer = shop.stripe.v1.customers.create({"email": "old@example.test"})
        subject = Subject(SubjectType.USER, "ada")
        mirror = MirrorService(session)
        await mirror.map_customer(shop.project.id, Mode.TEST, subject, customer.id, None)
        shop.stripe.v1.customers.update(customer.id, {"email": "first@example.test"})
        shop.stripe.v1.customers.update(customer.id, {"email": "latest@example.test"})
        stale = {"id": customer.id, "object": "customer", "email": "first@example.test"}
        await sync.apply_customer(stale, EventStamp.of(event(stale, "updated", int(time.time()))))
        row = await mirror.customer_of(shop.project.id, Mode.TEST, subject)
        assert row is not None and row.email == "latest@example.test" and not row.deleted
        unknown = {"id": "cus_unknown", "object": "customer"}
        assert (
            await sync.apply_customer(unknown, EventStamp.of(event(unknown, "updated", 1))) is None
        )


class TestGoneFromStripe:
    async def test_only_an_ending_is_taken_from_the_event_itself(
        self, app: FastAPI, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        shop, sync = await setup(app, session, secret_box, settings)
        base = {
            "object": "subscription",
            "customer": "cus_gone",
            "metadata": {},
            "items": {"data": [{"price": {"id": shop.prices["premium_monthly"]}}]},
        }
        active = {**base, "id": "sub_gone", "status": "active"}
        touched = await sync.sync_subscription(
            "sub_gone", stamp=EventStamp.of(event(active, "updated", 100)), payload=active
        )
        assert touched == set()
        assert (
            await MirrorService(session).subscription(shop.project.id, Mode.TEST, "sub_gone")
            is None
        )
        canceled = {**base, "id": "sub_gone", "status": "canceled"}
        await sync.sync_subscription(
            "sub_gone", stamp=EventStamp.of(event(canceled, "deleted", 100)), payload=canceled
        )
        row = await MirrorService(session).subscription(shop.project.id, Mode.TEST, "sub_gone")
        assert row is not None and row.status == "canceled"
