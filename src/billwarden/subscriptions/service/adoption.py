"""Adopting the Stripe subscriptions another billing system sold, once, when a team moves.

billwarden ties a subscription to its subject by its own metadata (`bw_*`) or by a customer it
recorded. A system it replaces named the subject under metadata keys of its own
(`userExternalId`, `organization_id`, ...): adoption reads every subscription of the project's
mode, finds the subject under the keys the team names (on the subscription, else on its
customer), writes billwarden's keys next to the old ones on both, records the customer as the
subject's and mirrors the subscription through the code webhooks use, so the subject's access
follows at once. A subscription already billwarden's, another project's, or whose customer is
recorded for another subject is left as it is; adopting again adopts nothing new.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.audit.service import Actor, AuditLog
from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_PATTERN, Subject, SubjectType
from billwarden.crypto import SecretBox
from billwarden.db.locks import lock_name
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import BillwardenError
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.service import (
    META_MODE,
    META_PROJECT,
    META_SUBJECT_ID,
    META_SUBJECT_TYPE,
    MirrorService,
    customer_id_of,
    subject_from_metadata,
    subject_of_row,
)
from billwarden.subscriptions.service.sync import SubscriptionSync

PAGE_SIZE = 100
ADOPTED_ACTION = "subscriptions.adopted"
_SUBJECT_ID = re.compile(SUBJECT_ID_PATTERN)


class Outcome(StrEnum):
    ALREADY = "already"  # billwarden's metadata, or a customer billwarden recorded
    ADOPTED = "adopted"  # (in a dry run: would be)
    OTHER_PROJECT = "other_project"  # billwarden's metadata of another project or mode
    NO_SUBJECT = "no_subject"  # none of the keys on the subscription or its customer
    CONFLICT = "conflict"  # its customer is recorded for another subject
    ERROR = "error"  # Stripe refused or failed


@dataclass(frozen=True)
class AdoptionKeys:
    """The metadata keys the previous system named its subjects (and their emails) under."""

    user: str | None = None
    organization: str | None = None
    email: str | None = None

    def subject_in(self, metadata: object) -> tuple[Subject, str] | None:
        """The subject the metadata names, the organization when both are named; with the
        `key=value` it was found by."""
        if not isinstance(metadata, dict):
            return None
        for key, kind in (
            (self.organization, SubjectType.ORGANIZATION),
            (self.user, SubjectType.USER),
        ):
            value = metadata.get(key) if key is not None else None
            if isinstance(value, str) and _SUBJECT_ID.match(value):
                return Subject(kind, value), f"{key}={value}"
        return None

    def email_in(self, *metadata: object) -> str | None:
        for found in metadata:
            value = found.get(self.email) if isinstance(found, dict) and self.email else None
            if isinstance(value, str) and 0 < len(value) <= 320:
                return value
        return None


@dataclass(frozen=True)
class Adoption:
    """What adoption did (or, in a dry run, would do) with one Stripe subscription."""

    subscription_id: str
    customer_id: str | None
    status: str | None
    outcome: Outcome
    subject: Subject | None = None
    # adopted: the plan granted now (or how the subject was found); conflict: the subject the
    # customer is recorded for; error: Stripe's message
    detail: str | None = None


@dataclass
class AdoptionReport:
    read: int = 0
    adoptions: list[Adoption] = field(default_factory=list)

    def of(self, outcome: Outcome) -> list[Adoption]:
        return [adoption for adoption in self.adoptions if adoption.outcome == outcome]


@dataclass(frozen=True)
class _Found:
    """A subscription considered for adoption, with what was read about it."""

    obj: dict[str, Any]
    customer: dict[str, Any] | None  # None: Stripe no longer has it (or it is deleted)
    subject: Subject
    found_by: str


class SubscriptionAdoption:
    """Adopts one (project, mode)'s Stripe subscriptions; each adoption is its own unit of
    work, audited, so one failure keeps none of its changes and stops no other."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: StripeGateway,
        secret_box: SecretBox,
        project_id: uuid.UUID,
        mode: Mode,
        keys: AdoptionKeys,
        *,
        actor: Actor,
        dry_run: bool = False,
    ) -> None:
        if keys.user is None and keys.organization is None:
            raise ValueError("adoption needs a user key or an organization key")
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.secret_box = secret_box
        self.project_id = project_id
        self.mode = mode
        self.keys = keys
        self.actor = actor
        self.dry_run = dry_run
        self._customers: dict[str, dict[str, Any] | None] = {}

    async def run(self, progress: Callable[[int], None] | None = None) -> AdoptionReport:
        """Every subscription of the mode (every status), page by page. Stripe failing to
        list them ends the run (StripeGatewayError); one object failing is an ERROR."""
        async with unit_of_work(self.sessionmaker, write=False) as session:
            secret_key = await self._sync(session).secret_key()
        report = AdoptionReport()
        params: dict[str, Any] = {"status": "all", "limit": PAGE_SIZE}
        while True:
            page = await self.gateway.list_page(
                self.project_id, self.mode, secret_key, "/v1/subscriptions", params
            )
            objects = [obj for obj in page["data"] if isinstance(obj, dict)]
            for obj in objects:
                if isinstance(obj.get("id"), str):
                    report.adoptions.append(await self._consider(obj, secret_key))
            report.read += len(objects)
            if progress is not None:
                progress(report.read)
            if not page.get("has_more") or not objects:
                return report
            params = {**params, "starting_after": objects[-1]["id"]}

    def _sync(self, session: AsyncSession) -> SubscriptionSync:
        return SubscriptionSync(session, self.gateway, self.secret_box, self.project_id, self.mode)

    async def _consider(self, obj: dict[str, Any], secret_key: str) -> Adoption:
        stripe_id = str(obj["id"])
        customer_id = customer_id_of(obj)
        status = obj.get("status") if isinstance(obj.get("status"), str) else None

        def outcome(
            kind: Outcome, subject: Subject | None = None, detail: str | None = None
        ) -> Adoption:
            return Adoption(stripe_id, customer_id, status, kind, subject, detail)

        metadata = obj.get("metadata")
        if subject_from_metadata(metadata, self.project_id, self.mode) is not None:
            return outcome(Outcome.ALREADY)
        if self._foreign(metadata):
            return outcome(Outcome.OTHER_PROJECT, detail=f"bw_project={metadata[META_PROJECT]}")
        try:
            customer = await self._customer(customer_id, secret_key)
        except BillwardenError as exc:
            return outcome(Outcome.ERROR, detail=exc.message)
        customer_metadata = customer.get("metadata") if customer is not None else None
        if self._foreign(customer_metadata):
            project = customer_metadata[META_PROJECT]
            return outcome(Outcome.OTHER_PROJECT, detail=f"its customer's bw_project={project}")
        named = self._named(metadata, customer_metadata, customer)
        async with unit_of_work(self.sessionmaker, write=False) as session:
            recorded = await self._recorded_subject(session, customer_id)
        if named is None:
            return outcome(Outcome.ALREADY if recorded is not None else Outcome.NO_SUBJECT)
        subject, found_by = named
        if recorded is not None and recorded.key != subject.key:
            return outcome(Outcome.CONFLICT, subject, f"its customer is {recorded}'s")
        if self.dry_run:
            return outcome(Outcome.ADOPTED, subject, found_by)
        try:
            return await self._adopt(_Found(obj, customer, subject, found_by), secret_key)
        except _Conflict as exc:
            return outcome(Outcome.CONFLICT, subject, f"its customer is {exc.recorded}'s")
        except BillwardenError as exc:
            return outcome(Outcome.ERROR, subject, exc.message)

    def _foreign(self, metadata: object) -> TypeGuard[dict[str, Any]]:
        """billwarden's keys, but not this project's and mode's subject."""
        return (
            isinstance(metadata, dict)
            and META_PROJECT in metadata
            and subject_from_metadata(metadata, self.project_id, self.mode) is None
        )

    def _named(
        self, metadata: object, customer_metadata: object, customer: dict[str, Any] | None
    ) -> tuple[Subject, str] | None:
        """The subject the subscription's metadata names, else its customer's; with how it was
        found."""
        named = self.keys.subject_in(metadata)
        where = "the subscription's"
        if named is None:
            named = self.keys.subject_in(customer_metadata)
            where = "its customer's"
        if named is None:
            return None
        subject, found_by = named
        # the customer's email in Stripe first: billwarden keeps the customer's in step with it
        email = _email_of(customer) or self.keys.email_in(metadata, customer_metadata)
        return Subject(subject.type, subject.id, email), f"{found_by} in {where} metadata"

    async def _customer(self, customer_id: str | None, secret_key: str) -> dict[str, Any] | None:
        """The subscription's customer as Stripe has it (read once per run); None when Stripe
        has deleted it."""
        if customer_id is None:
            return None
        if customer_id not in self._customers:
            found = await self.gateway.retrieve(
                self.project_id, self.mode, secret_key, f"/v1/customers/{customer_id}"
            )
            self._customers[customer_id] = None if found is None or found.get("deleted") else found
        return self._customers[customer_id]

    async def _recorded_subject(
        self, session: AsyncSession, customer_id: str | None, *, fresh: bool = False
    ) -> Subject | None:
        if customer_id is None:
            return None
        row = await MirrorService(session).customers.by_stripe_id(
            self.project_id, self.mode, customer_id, fresh=fresh
        )
        return subject_of_row(row) if row is not None else None

    async def _adopt(self, found: _Found, secret_key: str) -> Adoption:
        """billwarden's keys on the customer, then on the subscription (so a failure between
        leaves the subscription to adopt again), the customer recorded, the subscription
        mirrored and the subject's entitlement recomputed, audited: one unit of work."""
        obj, subject = found.obj, found.subject
        stripe_id = str(obj["id"])
        customer_id = customer_id_of(obj)
        tagged = {
            META_PROJECT: str(self.project_id),
            META_MODE: self.mode.value,
            META_SUBJECT_TYPE: subject.type.value,
            META_SUBJECT_ID: subject.id,
        }
        async with unit_of_work(self.sessionmaker) as session:
            # the lock checkout takes to make the subject's customer: the two take turns
            await lock_name(
                session,
                f"customer:{self.project_id}:{self.mode.value}:{subject.type.value}:{subject.id}",
            )
            recorded = await self._recorded_subject(session, customer_id, fresh=True)
            if recorded is not None and recorded.key != subject.key:
                raise _Conflict(recorded)
            mirror = MirrorService(session)
            before = await mirror.subscription(self.project_id, self.mode, stripe_id, fresh=True)
            before_state = (
                _subject_state(before.subject_type, before.subject_id) if before else None
            )
            recorded_customer = None
            if found.customer is not None and customer_id is not None:
                await self.gateway.update_customer_metadata(
                    self.project_id,
                    self.mode,
                    secret_key,
                    customer_id,
                    tagged,
                    idempotency_key=f"bw-adopt:{uuid.uuid4()}",
                )
                recorded_customer = await self._record_customer(mirror, subject, customer_id)
            await self.gateway.change_subscription(
                self.project_id,
                self.mode,
                secret_key,
                stripe_id,
                "update",
                {"metadata": tagged},
                idempotency_key=f"bw-adopt:{uuid.uuid4()}",
            )
            await self._sync(session).sync_subscription(stripe_id, stamp=None, subject_hint=subject)
            view = await EntitlementService(session).view(self.project_id, self.mode, subject)
            after = {
                **_subject_state(subject.type.value, subject.id),
                "stripeCustomerId": customer_id,
                "customerRecorded": recorded_customer == customer_id,
                "plan": view.plan,
                "hasAccess": view.has_access,
            }
            await AuditLog(session).record(
                self.actor,
                ADOPTED_ACTION,
                target_type="subscription",
                target_id=stripe_id,
                project_id=self.project_id,
                mode=self.mode,
                before=before_state,
                after=after,
                reason=found.found_by,
            )
        detail = f"{view.plan}, access {'granted' if view.has_access else 'not granted'}"
        if found.customer is None:
            detail += "; its customer is deleted in Stripe, not recorded"
        elif recorded_customer != customer_id:
            detail += f"; {subject} keeps its customer {recorded_customer}"
        status = obj.get("status") if isinstance(obj.get("status"), str) else None
        return Adoption(stripe_id, customer_id, status, Outcome.ADOPTED, subject, detail)

    async def _record_customer(
        self, mirror: MirrorService, subject: Subject, customer_id: str
    ) -> str:
        """Record the customer as the subject's, unless the subject has a live one already
        (which it keeps: one customer per subject); the subject's customer after."""
        existing = await mirror.customer_of(self.project_id, self.mode, subject)
        if existing is None:
            row, _ = await mirror.map_customer(
                self.project_id, self.mode, subject, customer_id, subject.email
            )
            return row.stripe_customer_id
        if existing.deleted and existing.stripe_customer_id != customer_id:
            await mirror.replace_deleted_customer(existing, customer_id, subject.email)
            return customer_id
        return existing.stripe_customer_id


class _Conflict(Exception):
    def __init__(self, recorded: Subject) -> None:
        super().__init__(str(recorded))
        self.recorded = recorded


def _subject_state(subject_type: str | None, subject_id: str | None) -> dict[str, Any]:
    return {"subjectType": subject_type, "subjectId": subject_id}


def _email_of(customer: dict[str, Any] | None) -> str | None:
    email = customer.get("email") if customer is not None else None
    return email if isinstance(email, str) and 0 < len(email) <= 320 else None
