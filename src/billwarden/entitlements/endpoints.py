"""HTTP routes for entitlements: reads and checks, answered from the snapshot (never Stripe)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from billwarden.auth import BillingCaller, EndUser, ProjectKey, end_user_subject
from billwarden.auth.dependencies import remembered_key
from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_PATTERN, Subject, SubjectType
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.changes import GenerationCache
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.schemas import (
    CheckResult,
    EntitlementCheck,
    EntitlementResponse,
    entitlement_fields,
)
from billwarden.entitlements.service import EntitlementService, EntitlementView, check_feature
from billwarden.errors import InvalidInput, error_responses
from billwarden.kit.state import AppReadCache
from billwarden.kit.subjects import SubjectId
from billwarden.usage.service import UsageService

router = APIRouter(prefix="/api/v1/entitlements", tags=["entitlements"])
routers = [router]


@router.get(
    "/me",
    response_model=EntitlementResponse,
    responses=error_responses(401, 403),
    summary="The calling end user's entitlement (its organization's, when the token names one)",
)
async def my_entitlement(user: EndUser, session: DbSession) -> EntitlementResponse:
    view = await EntitlementService(session).view(
        user.project_id, user.mode, end_user_subject(user)
    )
    return EntitlementResponse.of(view)


@dataclass(frozen=True)
class _Known:
    view: EntitlementView
    body: bytes  # the answer of GET /{subjectType}/{subjectId}, rendered once
    # a past_due grace ends at this time: the answer changes without any write
    until: datetime | None
    # the answers of POST /check naming a feature alone, rendered once per feature
    checks: dict[str, bytes] = field(default_factory=dict)


MAX_RENDERED_CHECKS = 64  # per subject: a catalog's features, not whatever callers send


async def cached_view(
    session: AsyncSession,
    cache: GenerationCache,
    project_id: uuid.UUID,
    mode: Mode,
    subject: Subject,
) -> _Known:
    """The subject's entitlement from memory while nothing it depends on has changed in the
    database (db.changes), else from its snapshot."""
    lookup = _lookup(project_id, mode, subject)
    scope = entitlement_scope(project_id, mode, subject)
    generation, known = cache.get(lookup, scope)
    if isinstance(known, _Known) and (known.until is None or known.until > utcnow()):
        return known
    view = await EntitlementService(session).view(project_id, mode, subject)
    snapshot = view.snapshot
    until = snapshot.grace_until if snapshot is not None and view.has_access else None
    known = _Known(view, _render(EntitlementResponse.of(view)), until)
    cache.put(lookup, generation, known, scope)
    return known


def _lookup(project_id: uuid.UUID, mode: Mode, subject: Subject) -> tuple[object, ...]:
    return ("entitlement", project_id, mode, subject.type, subject.id)


def entitlement_scope(project_id: uuid.UUID, mode: Mode, subject: Subject) -> str:
    """What PostgreSQL notifies when the subject's snapshot changes (migration 0016)."""
    return f"entitlements:{project_id}:{mode.value}:{subject.type.value}:{subject.id}"


def _render(answer: EntitlementResponse | CheckResult) -> bytes:
    return orjson.dumps(answer.model_dump(mode="json", by_alias=True))


@router.post(
    "/check",
    response_model=CheckResult,
    responses=error_responses(400, 401, 403),
    summary="May the subject use a feature? (end-user token, or API key naming the subject)",
)
async def check(
    body: EntitlementCheck, caller: BillingCaller, session: DbSession, cache: AppReadCache
) -> CheckResult | Response:
    if body.feature is None and body.metric is None:
        raise InvalidInput(
            "Name a feature, a metric (with an amount, default 1), or both.",
            details={"field": "feature"},
        )
    subject = caller.subject(body.subject_type, body.subject_id)
    known = await cached_view(session, cache, caller.project_id, caller.mode, subject)
    view = known.view
    if body.metric is None and body.feature is not None:
        # the hot check: the same answer while the entitlement it was read from is cached
        rendered = known.checks.get(body.feature)
        if rendered is None:
            allowed, reason = check_feature(view, body.feature)
            rendered = _render(
                CheckResult(
                    allowed=allowed,
                    reason=reason,
                    entitlement=entitlement_fields(view)["entitlement"],
                )
            )
            if len(known.checks) < MAX_RENDERED_CHECKS:
                known.checks[body.feature] = rendered
        return Response(rendered, media_type="application/json")
    allowed, reason = check_feature(view, body.feature) if body.feature else (True, "granted")
    result = CheckResult(
        allowed=allowed, reason=reason, entitlement=entitlement_fields(view)["entitlement"]
    )
    if body.metric is not None:
        decision = await UsageService(session).check(
            caller.project_id, caller.mode, subject, body.metric, body.amount, view
        )
        if allowed and not decision.allowed:
            result.allowed, result.reason = False, "quota_exceeded"
        if decision.figures is not None:
            result.limit = decision.figures.limit
            result.used = decision.figures.used
            result.remaining = decision.figures.remaining
            result.resets_at = decision.figures.resets_at
    return result


subject_entitlement_path = "/api/v1/entitlements/{subject_type}/{subject_id}"


@router.get(
    "/{subject_type}/{subject_id}",
    response_model=EntitlementResponse,
    responses=error_responses(400, 401),
    summary="A subject's entitlement (project API key); the free one for an unknown subject",
)
async def subject_entitlement(
    subject_type: SubjectType,
    subject_id: SubjectId,
    key: ProjectKey,
    session: DbSession,
    cache: AppReadCache,
) -> Response:
    known = await cached_view(
        session, cache, key.project_id, key.mode, Subject(subject_type, subject_id)
    )
    return Response(known.body, media_type="application/json")


_READ_PATH = re.compile(r"/api/v1/entitlements/(user|organization)/([^/]+)")
_SUBJECT_ID = re.compile(SUBJECT_ID_PATTERN)


@dataclass(frozen=True)
class _Template:
    path: str  # what the metrics label the request with, as for a routed request


class CachedEntitlementReads:
    """`GET /api/v1/entitlements/{subjectType}/{subjectId}` answered straight from the read
    cache when it holds both the API key's principal and the subject's entitlement (and may be
    trusted: db.changes); any other request, and every miss, goes on to the route, which reads
    the database and fills the cache. Innermost: the request guard, security headers, metrics
    and request id still wrap it."""

    def __init__(self, app: ASGIApp, *, cache: GenerationCache, secret_box: SecretBox) -> None:
        self.app = app
        self.cache = cache
        self.secret_box = secret_box
        self.template = _Template(subject_entitlement_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._remembered(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.template
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _remembered(self, scope: Scope) -> bytes | None:
        if scope["method"] != "GET":
            return None
        match = _READ_PATH.fullmatch(scope["path"])
        if match is None or not _SUBJECT_ID.fullmatch(match.group(2)):
            return None
        token = _bearer_token(scope)
        if token is None or not token.startswith(("bw_test_", "bw_live_")):
            return None
        key = remembered_key(self.cache, self.secret_box, token)
        if key is None:
            return None
        subject = Subject(SubjectType(match.group(1)), match.group(2))
        _, known = self.cache.get(
            _lookup(key.project_id, key.mode, subject),
            entitlement_scope(key.project_id, key.mode, subject),
        )
        if not isinstance(known, _Known) or (known.until is not None and known.until <= utcnow()):
            return None
        return known.body


def _bearer_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials
            return None
    return None
