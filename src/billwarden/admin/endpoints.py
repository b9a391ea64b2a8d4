"""The admin console at /admin: server-rendered pages (Jinja2), signed in with the console
session. Pages only read; every write (a repair, a run, a replay, a key) is a call from the page
to billwarden's JSON API with the session's CSRF token, so the API's authorization applies."""

from __future__ import annotations

import hashlib
import uuid
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from billwarden.admin import service
from billwarden.admin.exceptions import StaticFileNotFound
from billwarden.admin.service import Frame
from billwarden.audit.models import AuditEntry
from billwarden.auth import OptionalConsoleUser, admin_access, key_viewer
from billwarden.config import RECONCILE_REASONS
from billwarden.core.modes import Mode
from billwarden.core.security_headers import CONSOLE_CONTENT_SECURITY_POLICY
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import DbSession
from billwarden.identity.models import User
from billwarden.kit.state import AppSecretBox, AppSettings
from billwarden.projects.invitations import InvitationPolicy, InvitationService
from billwarden.webhooks.models import InboxStatus, WebhookEvent

router = APIRouter(prefix="/admin", include_in_schema=False)
routers = [router]

SECTIONS = (
    ("/admin/billing", "Billing"),
    ("/admin/webhooks", "Webhook events"),
    ("/admin/payments", "Subscriptions and payments"),
    ("/admin/audit", "Audit log"),
    ("/admin/keys", "API keys"),
    ("/admin/stripe", "Stripe"),
    ("/admin/notifications", "Notifications"),
    ("/admin/invitations", "Invitations"),
)
_templates = Environment(
    loader=PackageLoader("billwarden.admin", "templates"),
    autoescape=select_autoescape(default=True),
)
ProjectRef = Annotated[str | None, Query(max_length=100, description="Project id or slug.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def _render(request: Request, template: str, frame: Frame, title: str, **context: Any) -> Response:
    """A page under the console's Content-Security-Policy: its scripts and styles are the files
    under /admin/static, nothing inline."""
    query = (
        urlencode({"project": frame.project.slug, "mode": frame.mode.value})
        if frame.project is not None
        else ""
    )
    html = _templates.get_template(template).render(
        frame=frame,
        title=title,
        sections=SECTIONS,
        current=request.url.path if template != "record.html" else "/admin/billing",
        query=query,
        **context,
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CONSOLE_CONTENT_SECURITY_POLICY})


_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# the console's scripts and styles (and the sign-in page's), read once: a handful of small files
_STATIC = {
    entry.name: entry.read_bytes()
    for entry in files("billwarden.admin").joinpath("static").iterdir()
    if entry.name.endswith(tuple(_STATIC_TYPES))
}
_ETAGS = {name: f'"{hashlib.sha256(body).hexdigest()[:32]}"' for name, body in _STATIC.items()}


@router.get("/static/{name}")
async def static_file(
    request: Request, name: Annotated[str, Path(max_length=64, pattern=r"^[a-z-]+\.(?:css|js)$")]
) -> Response:
    body = _STATIC.get(name)
    if body is None:
        raise StaticFileNotFound("No such console file.", details={"name": name})
    # revalidated on every page (no-cache), answered 304 while unchanged
    headers = {"ETag": _ETAGS[name], "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == _ETAGS[name]:
        return Response(status_code=304, headers=headers)
    media_type = _STATIC_TYPES[name[name.rindex(".") :]]
    return Response(body, media_type=media_type, headers=headers)


async def _frame(session: DbSession, user: User, project: str | None, mode: Mode) -> Frame:
    return await service.frame(session, user, project, mode)


@router.get("", response_class=HTMLResponse)
async def console_home(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse("/admin/billing" + query, status_code=303)


@router.get("/billing", response_class=HTMLResponse)
async def billing_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    offset: Offset = 0,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    reason = reason if reason in RECONCILE_REASONS else None
    status = status if status in ("mismatched", "in_sync") else None
    page = None
    if frame.project is not None:
        page = await service.billing(
            session, frame.project, mode, reason=reason, status=status, offset=offset
        )
    return _render(
        request,
        "billing.html",
        frame,
        "Billing",
        page=page,
        reasons=RECONCILE_REASONS,
        reason=reason,
        status=status,
    )


@router.get("/billing/records/{record_id}", response_class=HTMLResponse)
async def record_page(
    request: Request,
    record_id: uuid.UUID,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    found = (
        await service.record(session, frame.project, mode, record_id)
        if frame.project is not None
        else None
    )
    if found is None:
        return RedirectResponse(f"/admin/billing?{request.url.query}", status_code=303)
    return _render(
        request,
        "record.html",
        frame,
        "Record diagnostics",
        record=found,
        rows=service.diagnostics(found),
    )


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
    status: Annotated[str | None, Query(max_length=16)] = None,
    event_type: Annotated[str | None, Query(alias="type", max_length=255)] = None,
    offset: Offset = 0,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    known = {item.value: item for item in InboxStatus}
    chosen = known.get(status or "")
    events: list[WebhookEvent] = []
    total = 0
    if frame.project is not None and frame.is_admin:
        events, total = await service.webhook_events(
            session,
            frame.project,
            mode,
            status=chosen,
            event_type=event_type or None,
            offset=offset,
        )
    return _render(
        request,
        "webhooks.html" if frame.is_admin else "admins_only.html",
        frame,
        "Webhook events",
        events=events,
        total=total,
        statuses=list(known),
        status=chosen.value if chosen else None,
        event_type=event_type,
    )


@router.get("/payments", response_class=HTMLResponse)
async def payments_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    page = (
        await service.payments_page(session, frame.project, mode)
        if frame.project is not None
        else None
    )
    return _render(request, "payments.html", frame, "Subscriptions and payments", page=page)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
    offset: Offset = 0,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    entries: list[AuditEntry] = []
    total = 0
    if frame.project is not None and frame.is_admin:
        entries, total = await service.audit_entries(session, frame.project, offset=offset)
    return _render(
        request,
        "audit.html" if frame.is_admin else "admins_only.html",
        frame,
        "Audit log",
        entries=entries,
        total=total,
    )


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    secret_box: AppSecretBox,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    keys = (
        await service.api_keys(session, secret_box, await key_viewer(session, user), frame.project)
        if frame.project is not None
        else []
    )
    return _render(request, "keys.html", frame, "API keys", keys=keys)


@router.get("/stripe", response_class=HTMLResponse)
async def stripe_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    modes = await service.stripe_status(session, frame.project) if frame.project else []
    return _render(request, "stripe.html", frame, "Stripe configuration", modes=modes)


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    secret_box: AppSecretBox,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    endpoints = []
    if frame.project is not None and frame.is_admin:
        endpoints = await service.notification_endpoints(session, secret_box, frame.project)
    return _render(
        request,
        "notifications.html" if frame.is_admin else "admins_only.html",
        frame,
        "Notifications",
        endpoints=endpoints,
    )


@router.get("/invitations", response_class=HTMLResponse)
async def invitations_page(
    request: Request,
    user: OptionalConsoleUser,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    project: ProjectRef = None,
    mode: Mode = Mode.TEST,
) -> Response:
    """The signed-in user's pending invitations (shown to anyone, member of a project or not);
    for the shown project's admins, its outstanding invitations and an invitation form."""
    if user is None:
        return _sign_in(request)
    frame = await _frame(session, user, project, mode)
    invitations = InvitationService(session, secret_box, InvitationPolicy.from_settings(settings))
    outstanding: list[Any] = []
    if frame.project is not None and frame.is_admin:
        access = await admin_access(session, user, frame.project.id)
        outstanding, _ = await invitations.list_outstanding(access, limit=100, offset=0)
    return _render(
        request,
        "invitations.html",
        frame,
        "Invitations",
        without_project=True,
        pending=(await invitations.pending_for(user))[0],
        outstanding=outstanding,
        now=utcnow(),
    )
