"""HTTP routes for usage: ingest (API key or end-user JWT), a subject's day (end-user JWT, seed
004) and series (API key)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request

from billwarden.auth import (
    BillingCaller,
    EndUserPrincipal,
    ProjectKey,
    end_user_subject,
    request_end_user,
)
from billwarden.auth.dependencies import Bearer
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import Forbidden, InvalidInput, Unauthorized, error_responses
from billwarden.kit.schemas import IsoDate, whole
from billwarden.kit.state import AppReadCache, AppSecretBox, AppSettings
from billwarden.kit.subjects import SubjectId
from billwarden.usage.exceptions import UnknownMetric, UsageEventNotFound
from billwarden.usage.repository import UsageRepository
from billwarden.usage.schemas import (
    ConsumeRequest,
    ConsumeResult,
    MeterForwardRead,
    QuotaFigures,
    SeriesPoint,
    UsageAccepted,
    UsageBatch,
    UsageDay,
    UsageEventRead,
    UsageSeries,
)
from billwarden.usage.service import DAY, MAX_BATCH, UsageService

router = APIRouter(tags=["usage"])
routers = [router]
MAX_SERIES_DAYS = 400


async def bearer_end_user(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    bearer: Bearer,
) -> EndUserPrincipal:
    """An end user, refused with seed 004's codes: 401 UNAUTHORIZED, 403 FORBIDDEN."""
    try:
        return await request_end_user(request, session, secret_box, settings, cache, bearer)
    except Unauthorized as exc:  # UNAUTHENTICATED, however the token failed
        raise Unauthorized(
            "A valid Bearer token is required to access this resource.",
            details={"reason": exc.message},
        ) from exc
    except Forbidden as exc:
        raise Forbidden(exc.message, code="FORBIDDEN", details=exc.details) from exc


# seed 004's end user (GET /api/v1/billing/usage here, POST /api/v1/billing/checkout in compat)
BearerEndUser = Annotated[EndUserPrincipal, Depends(bearer_end_user)]
# /docs shows seed 004's surface under this tag (the same as compat/endpoints/seeds.py's)
SEED_004_TAG = "seed 004: OpenAPI'd billing"


def camel(name: str) -> str:
    """`tokens_issued` as seed 004's field name: `tokensIssued`."""
    head, *rest = re.split(r"[_.\-]", name)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@router.post(
    "/api/v1/usage/events",
    response_model=UsageAccepted,
    status_code=202,
    responses=error_responses(400, 401, 403),
    summary="Record a batch of usage events; each id counts once, a bad event alone is refused",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UsageBatch.model_json_schema()}},
        }
    },
)
async def record_usage(
    request: Request, caller: BillingCaller, session: DbSession
) -> UsageAccepted:
    """The batch is parsed here (orjson, then its shape), not by a request model: a batch of
    1,000 events is the hot path of usage."""
    result = await UsageService(session).ingest(
        caller.project_id, caller.mode, await _batch(request), own=caller.own_subject
    )
    return UsageAccepted.of(result)


async def _batch(request: Request) -> list[Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("The body is not JSON.") from exc
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) - {"events"} or not isinstance(events, list):
        raise InvalidInput(
            'The body is {"events": [...]}, and nothing else.', details={"field": "events"}
        )
    if not 1 <= len(events) <= MAX_BATCH:
        raise InvalidInput(
            f"A batch holds 1 to {MAX_BATCH} events, not {len(events)}.",
            details={"field": "events"},
        )
    return events


@router.get(
    "/api/v1/usage/events/{event_id}",
    response_model=UsageEventRead,
    responses=error_responses(400, 401, 404),
    summary="One usage event, and its forwarding to a Stripe meter (project API key)",
)
async def usage_event(
    event_id: Annotated[str, Path(min_length=1, max_length=255)],
    key: ProjectKey,
    session: DbSession,
) -> UsageEventRead:
    found = await UsageRepository(session).event(key.project_id, key.mode, event_id)
    if found is None:
        raise UsageEventNotFound("No such usage event.", details={"id": event_id})
    event, forward = found
    return UsageEventRead(
        id=event.event_id,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        metric=event.metric,
        value=event.value,
        timestamp=event.timestamp,
        received_at=event.received_at,
        properties=event.properties,
        meter=MeterForwardRead(
            event_name=forward.event_name,
            status=forward.status,
            attempts=forward.attempts,
            forwarded_at=forward.forwarded_at,
            last_error=forward.last_error,
            next_attempt_at=forward.next_attempt_at,
        )
        if forward is not None
        else None,
    )


@router.post(
    "/api/v1/usage/consume",
    response_model=ConsumeResult,
    responses=error_responses(400, 401, 403),
    summary="Check a quota and record the use in one atomic step (exact under concurrency)",
)
async def consume(body: ConsumeRequest, caller: BillingCaller, session: DbSession) -> ConsumeResult:
    """Over the quota: 200 with `allowed: false` and the figures, nothing recorded. An id
    recorded before answers `duplicate: true` and is not counted again."""
    subject = caller.subject(body.subject_type, body.subject_id)
    decision, duplicate = await UsageService(session).consume(
        caller.project_id, caller.mode, subject, body.id, body.metric, body.amount
    )
    return ConsumeResult.of(decision, duplicate)


@router.get(
    "/api/v1/billing/usage",
    tags=[SEED_004_TAG],
    response_model=UsageDay,
    responses=error_responses(400, 401, 403),
    summary="The calling end user's (or organization's) usage of one UTC day, and its quotas",
)
async def my_usage(
    user: BearerEndUser,
    session: DbSession,
    day: Annotated[IsoDate | None, Query(alias="date", description="Default: today (UTC).")] = None,
) -> dict[str, Any]:
    subject = end_user_subject(user)
    service = UsageService(session)
    totals = await service.day(user.project_id, user.mode, subject, day or datetime.now(UTC).date())
    quotas = await service.quotas(user.project_id, user.mode, subject)
    answer: dict[str, Any] = {
        "organizationId" if subject.type is SubjectType.ORGANIZATION else "userId": subject.id,
        "date": day or datetime.now(UTC).date(),
    }
    for name, value in totals.items():
        answer.setdefault(camel(name), whole(value))
    answer["metrics"] = totals
    answer["quotas"] = {
        metric: QuotaFigures.model_validate(
            {**figures, "resetsAt": figures["resetsAt"]}
        ).model_dump(by_alias=True)
        for metric, figures in quotas.items()
    }
    return answer


def _days_before(day: date, days: int) -> date:
    """`days` before `day`, or the first day there is (a window ending in the year 1)."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


@router.get(
    "/api/v1/usage/{subject_type}/{subject_id}",
    response_model=UsageSeries,
    responses=error_responses(400, 401),
    summary="A subject's usage per UTC day or month (project API key)",
)
async def usage_series(
    subject_type: SubjectType,
    subject_id: SubjectId,
    key: ProjectKey,
    session: DbSession,
    metric: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    since: Annotated[IsoDate | None, Query(alias="from")] = None,
    until: Annotated[IsoDate | None, Query(alias="to")] = None,
    granularity: Literal["day", "month"] = "day",
) -> UsageSeries:
    """Days (default: the last 30) or months (default: the last 12), inclusive; every period
    listed, zero where nothing was recorded."""
    end = until or datetime.now(UTC).date()
    start = since or (
        _days_before(end, 29) if granularity == DAY else _days_before(end.replace(day=1), 334)
    )
    if start > end:
        raise InvalidInput("`from` must not be after `to`.", details={"field": "from"})
    if (end - start).days > (MAX_SERIES_DAYS if granularity == DAY else 3660):
        raise InvalidInput(
            f"At most {MAX_SERIES_DAYS} days (or 10 years of months) per call.",
            details={"field": "from"},
        )
    service = UsageService(session)
    if metric is not None and metric not in await service.known_metrics(key.project_id):
        raise UnknownMetric(f"Unknown metric {metric!r}.", details={"metric": metric})
    subject = Subject(subject_type, subject_id)
    found = await service.series(
        key.project_id, key.mode, subject, granularity, metric=metric, since=start, until=end
    )
    return UsageSeries(
        subject_type=subject_type.value,
        subject_id=subject_id,
        granularity=granularity,
        from_=start,
        to=end,
        series={
            name: [SeriesPoint(period=period, value=value) for period, value in points]
            for name, points in found.items()
        },
    )
