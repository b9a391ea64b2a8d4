"""HTTP routes for invitations: an admin invites an email to the project (the answer is the same
whether or not a console user has that email), lists and revokes the outstanding invitations; the
invitee, signed in, lists theirs and accepts one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from billwarden.audit.service import audit
from billwarden.auth import CurrentConsoleUser, ProjectAdminAccess
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppSecretBox, from_settings
from billwarden.projects.invitations import (
    InvitationPolicy,
    InvitationService,
    PendingInvitation,
)
from billwarden.projects.models import ProjectInvitation
from billwarden.projects.schemas import (
    InvitationAccept,
    InvitationCreated,
    InvitationRead,
    InvitationStatus,
    MemberInvite,
    MyInvitation,
    ProjectRead,
)

project_invitations = APIRouter(prefix="/api/v1/projects", tags=["projects"])
invitations_router = APIRouter(prefix="/api/v1/invitations", tags=["projects"])

ACCEPT_PAGE = "/admin/invitations"

Policy = Annotated[InvitationPolicy, Depends(from_settings(InvitationPolicy.from_settings))]


async def _service(
    session: DbSession, secret_box: AppSecretBox, policy: Policy
) -> InvitationService:
    return InvitationService(session, secret_box, policy)


Invitations = Annotated[InvitationService, Depends(_service)]


def _invitation_read(invitation: ProjectInvitation, invited_by: str | None) -> InvitationRead:
    expired = invitation.expires_at <= utcnow()
    return InvitationRead(
        id=invitation.id,
        project_id=invitation.project_id,
        email=invitation.email,
        role=invitation.role,
        status=InvitationStatus.EXPIRED if expired else InvitationStatus.PENDING,
        invited_by=invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


@project_invitations.post(
    "/{project_id}/members",
    status_code=201,
    response_model=InvitationCreated,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Invite someone by email to become a member (admins; only owners invite owners). "
    "Nothing is granted until they accept; the token is returned only here",
)
async def invite_member(
    body: MemberInvite, access: ProjectAdminAccess, invitations: Invitations, session: DbSession
) -> InvitationCreated:
    created = await invitations.invite(access, body.email, body.role)
    invitation = created.invitation
    await audit(
        session,
        access.user,
        "project.member_invited",
        project_id=access.project.id,
        target_type="invitation",
        target_id=invitation.id,
        after={
            "email": invitation.email,
            "role": invitation.role.value,
            "expiresAt": invitation.expires_at.isoformat(),
            "replacedPending": created.replaced,
        },
    )
    read = _invitation_read(invitation, access.user.email)
    return InvitationCreated(
        **read.model_dump(by_alias=False),
        token=created.token,
        accept_url=f"{ACCEPT_PAGE}#token={created.token}",
    )


@project_invitations.get(
    "/{project_id}/invitations",
    response_model=Page[InvitationRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The project's outstanding invitations, pending or expired, newest first (admins)",
)
async def list_invitations(
    access: ProjectAdminAccess, invitations: Invitations, pages: Pages
) -> Page[InvitationRead]:
    rows, total = await invitations.list_outstanding(access, **pages.window)
    return Page[InvitationRead].of(rows, total, pages, lambda row: _invitation_read(*row))


@project_invitations.delete(
    "/{project_id}/invitations/{invitation_id}",
    status_code=204,
    responses=error_responses(400, 401, 403, 404, 410),
    summary="Revoke an invitation: its link stops working (admins; owners for an owner's)",
)
async def revoke_invitation(
    invitation_id: uuid.UUID,
    access: ProjectAdminAccess,
    invitations: Invitations,
    session: DbSession,
) -> Response:
    invitation, revoked_now = await invitations.revoke(access, invitation_id)
    if revoked_now:
        await audit(
            session,
            access.user,
            "project.invitation_revoked",
            project_id=access.project.id,
            target_type="invitation",
            target_id=invitation.id,
            after={"email": invitation.email, "role": invitation.role.value},
        )
    return Response(status_code=204)


def _my_invitation(pending: PendingInvitation) -> MyInvitation:
    return MyInvitation(
        id=pending.invitation.id,
        project_id=pending.project.id,
        project_name=pending.project.name,
        role=pending.invitation.role,
        invited_by=pending.invited_by,
        created_at=pending.invitation.created_at,
        expires_at=pending.invitation.expires_at,
    )


@invitations_router.get(
    "",
    response_model=Page[MyInvitation],
    responses=error_responses(400, 401),
    summary="Your pending invitations (to your account's email), newest first",
)
async def my_invitations(
    user: CurrentConsoleUser, invitations: Invitations, pages: Pages
) -> Page[MyInvitation]:
    rows, total = await invitations.pending_for(user, **pages.window)
    return Page[MyInvitation].of(rows, total, pages, _my_invitation)


@invitations_router.post(
    "/accept",
    response_model=ProjectRead,
    responses=error_responses(400, 401, 403, 404, 409, 410),
    summary="Accept an invitation addressed to your email: you become a member with its role",
)
async def accept_invitation(
    body: InvitationAccept, user: CurrentConsoleUser, invitations: Invitations, session: DbSession
) -> ProjectRead:
    invitation, member = await invitations.accept(
        user, token=body.token, invitation_id=body.invitation_id
    )
    await audit(
        session,
        user,
        "project.member_added",
        project_id=invitation.project_id,
        target_type="user",
        target_id=user.id,
        after={"email": user.email, "role": member.role.value, "invitationId": str(invitation.id)},
    )
    project = await invitations.project_of(invitation)
    return ProjectRead(
        id=project.id,
        name=project.name,
        slug=project.slug,
        past_due_grace_days=project.past_due_grace_days,
        created_at=project.created_at,
        updated_at=project.updated_at,
        role=member.role,
    )
