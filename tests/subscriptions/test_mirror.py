"""The mirror's rules: whose a subscription is, and never going back in time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.subscriptions.service import EventStamp, MirrorService
from tests.identity.factories import People
from tests.projects.factories import Tenants


def stripe_subscription(
    project_id: uuid.UUID, status: str = "active", *, subject: str | None = "ada", **fields: Any
) -> dict[str, Any]:
    metadata = (
        {
            "bw_project": str(project_id),
            "bw_mode": "test",
            "bw_subject_type": "user",
            "bw_subject_id": subject,
        }
        if subject
        else {}
    )
    return {
        "id": "sub_mirror",
        "object": "subscription",
        "customer": "cus_mirror",
        "status": status,
        "metadata": metadata,
        "cancel_at_period_end": False,
        "items": {
            "data": [
                {
                    "price": {"id": "price_a"},
                    "current_period_start": 1_790_000_000,
                    "current_period_end": 1_792_592_000,
                }
            ]
        },
        **fields,
    }


def stamp(second: int, event_id: str | None = None) -> EventStamp:
    return EventStamp(event_id or f"evt_{second}", datetime.fromtimestamp(second, UTC))


async def project_id(people: People, tenants: Tenants) -> uuid.UUID:
    return (await tenants.project(await people.user())).id


class TestOrder:
    async def test_an_older_event_never_overwrites_a_newer_one(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        mirror = MirrorService(session)
        newer = await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "past_due"),
            stamp=stamp(200),
            price_map={},
        )
        older = await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "active"),
            stamp=stamp(100),
            price_map={},
        )
        assert newer.applied and not older.applied
        row = await mirror.subscription(project, Mode.TEST, "sub_mirror")
        assert row is not None
        assert row.status == "past_due" and row.last_event_id == "evt_200"

    async def test_events_of_the_same_second_are_not_ordered_by_their_timestamps(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        mirror = MirrorService(session)
        await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "active"),
            stamp=stamp(200, "evt_a"),
            price_map={},
        )
        same = await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "active", cancel_at_period_end=True),
            stamp=stamp(200, "evt_b"),
            price_map={},
        )
        assert same.applied
        row = await mirror.subscription(project, Mode.TEST, "sub_mirror")
        assert row is not None and row.cancel_at_period_end and row.last_event_id == "evt_b"

    async def test_a_fresh_read_applies_whatever_was_last_applied(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        mirror = MirrorService(session)
        await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "active"),
            stamp=stamp(200),
            price_map={},
        )
        fresh = await mirror.apply_subscription(
            project, Mode.TEST, stripe_subscription(project, "canceled"), stamp=None, price_map={}
        )
        assert fresh.applied and fresh.row is not None and fresh.row.status == "canceled"
        assert fresh.row.last_event_id == "evt_200"  # no event: the last one stays


class TestColumns:
    async def test_typed_columns_come_from_the_object_and_its_items(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        applied = await MirrorService(session).apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(
                project,
                "trialing",
                trial_end=1_790_500_000,
                cancel_at=1_792_592_000,
                pause_collection={"behavior": "void", "resumes_at": None},
            ),
            stamp=stamp(100),
            price_map={"price_a": "premium_monthly"},
        )
        row = applied.row
        assert row is not None
        assert (row.subject_type, row.subject_id) == ("user", "ada")
        assert applied.subjects == {Subject(SubjectType.USER, "ada")}
        assert row.price_ids == ["price_a"] and row.purchase_keys == ["premium_monthly"]
        assert row.current_period_start == datetime.fromtimestamp(1_790_000_000, UTC)
        assert row.current_period_end == datetime.fromtimestamp(1_792_592_000, UTC)
        assert row.trial_end == datetime.fromtimestamp(1_790_500_000, UTC)
        assert row.pause_behavior == "void"
        assert row.raw["id"] == "sub_mirror"

    async def test_past_due_since_marks_when_it_became_past_due(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        mirror = MirrorService(session)
        for second, status in ((100, "active"), (200, "past_due"), (300, "past_due")):
            applied = await mirror.apply_subscription(
                project,
                Mode.TEST,
                stripe_subscription(project, status),
                stamp=stamp(second),
                price_map={},
            )
        assert applied.row is not None
        assert applied.row.past_due_since == datetime.fromtimestamp(200, UTC)
        await mirror.apply_subscription(
            project,
            Mode.TEST,
            stripe_subscription(project, "active"),
            stamp=stamp(400),
            price_map={},
        )
        assert applied.row.past_due_since is None


class TestOwner:
    async def test_another_projects_metadata_is_not_trusted(
        self, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        project = await project_id(people, tenants)
        other = await project_id(people, tenants)
        mirror = MirrorService(session)
        foreign = await mirror.apply_subscription(
            project, Mode.TEST, stripe_subscription(other), stamp=stamp(100), price_map={}
        )
        assert foreign.row is not None and foreign.row.subject_id is None
        # the customer's mapping decides once it exists
        await mirror.map_customer(
            project, Mode.TEST, Subject(SubjectType.ORGANIZATION, "org-1"), "cus_mirror", None
        )
        mapped = await mirror.apply_subscription(
            project, Mode.TEST, stripe_subscription(other), stamp=stamp(101), price_map={}
        )
        assert mapped.row is not None
        assert (mapped.row.subject_type, mapped.row.subject_id) == ("organization", "org-1")
