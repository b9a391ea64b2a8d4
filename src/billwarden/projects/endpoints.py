"""HTTP routes for projects, their members, end-user secret rotation and how the project
accepts its end users' tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from billwarden.audit.service import audit
from billwarden.auth import CurrentConsoleUser, ProjectAdminAccess, ProjectMemberAccess
from billwarden.config import Settings
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import error_responses
from billwarden.identity.tokens import ClaimNames
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppSecretBox, AppSettings
from billwarden.projects.end_user_auth import EndUserAuthInput, EndUserAuthService, from_environment
from billwarden.projects.invitation_endpoints import invitations_router, project_invitations
from billwarden.projects.models import (
    EndUserAuth,
    EndUserAuthMethod,
    Project,
    ProjectMember,
    ProjectRole,
)
from billwarden.projects.schemas import (
    EndUserAuthRead,
    EndUserAuthWrite,
    EndUserClaimNames,
    EndUserSecretRotated,
    MemberRead,
    MemberUpdate,
    ProjectCreate,
    ProjectCreated,
    ProjectRead,
    ProjectUpdate,
)
from billwarden.projects.service import EndUserSecretService, MembershipService
from billwarden.projects.stripe_endpoints import router as stripe_router

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])
routers = [router, project_invitations, invitations_router, stripe_router]


def _project_read(project: Project, role: ProjectRole | None) -> ProjectRead:
    return ProjectRead(
        id=project.id,
        name=project.name,
        slug=project.slug,
        past_due_grace_days=project.past_due_grace_days,
        created_at=project.created_at,
        updated_at=project.updated_at,
        role=role,
    )


def _member_read(member: ProjectMember, email: str) -> MemberRead:
    return MemberRead(
        user_id=member.user_id, email=email, role=member.role, created_at=member.created_at
    )


async def _secrets(
    session: DbSession, secret_box: AppSecretBox, settings: AppSettings
) -> EndUserSecretService:
    overlap = timedelta(seconds=settings.end_user_secret_overlap_seconds)
    return EndUserSecretService(session, secret_box, overlap)


EndUserSecrets = Annotated[EndUserSecretService, Depends(_secrets)]


def _settings_of(project: Project) -> dict[str, object]:
    return {
        "name": project.name,
        "slug": project.slug,
        "pastDueGraceDays": project.past_due_grace_days,
    }


@router.post(
    "",
    status_code=201,
    response_model=ProjectCreated,
    responses=error_responses(400, 401, 403, 409),
    summary="Create a project; you become its owner. Returns its end-user secret once.",
)
async def create_project(
    body: ProjectCreate, user: CurrentConsoleUser, session: DbSession, secrets: EndUserSecrets
) -> ProjectCreated:
    project = await MembershipService(session).create_project(user, body.name, body.slug)
    secret, _ = await secrets.rotate(project)
    await audit(
        session,
        user,
        "project.created",
        project_id=project.id,
        target_type="project",
        target_id=project.id,
        after={"name": project.name, "slug": project.slug},
    )
    read = _project_read(project, ProjectRole.OWNER)
    return ProjectCreated(**read.model_dump(by_alias=False), end_user_secret=secret)


@router.get(
    "",
    response_model=Page[ProjectRead],
    responses=error_responses(400, 401),
    summary="Projects you are a member of (every project for a superuser)",
)
async def list_projects(
    user: CurrentConsoleUser, session: DbSession, pages: Pages
) -> Page[ProjectRead]:
    rows, total = await MembershipService(session).list_projects(user, **pages.window)
    return Page[ProjectRead].of(rows, total, pages, lambda row: _project_read(*row))


@router.get("/{project_id}", response_model=ProjectRead, responses=error_responses(400, 401, 404))
async def get_project(access: ProjectMemberAccess) -> ProjectRead:
    return _project_read(access.project, access.role)


@router.patch(
    "/{project_id}",
    response_model=ProjectRead,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Rename a project, change its slug or its past-due grace (admins)",
)
async def update_project(
    body: ProjectUpdate, access: ProjectAdminAccess, session: DbSession
) -> ProjectRead:
    before = _settings_of(access.project)
    project = await MembershipService(session).update_project(
        access, name=body.name, slug=body.slug, past_due_grace_days=body.past_due_grace_days
    )
    await audit(
        session,
        access.user,
        "project.updated",
        project_id=project.id,
        target_type="project",
        target_id=project.id,
        before=before,
        after=_settings_of(project),
    )
    if body.past_due_grace_days is not None:
        # access of past_due subjects follows the new grace at once
        await EntitlementService(session).recompute_past_due(project.id)
    return _project_read(project, access.role)


@router.get(
    "/{project_id}/members",
    response_model=Page[MemberRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The project's members and their roles (admins)",
)
async def list_members(
    access: ProjectAdminAccess, session: DbSession, pages: Pages
) -> Page[MemberRead]:
    rows, total = await MembershipService(session).list_members(access, **pages.window)
    return Page[MemberRead].of(rows, total, pages, lambda row: _member_read(*row))


@router.patch(
    "/{project_id}/members/{user_id}",
    response_model=MemberRead,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Change a member's role (admins; only owners grant or take the owner role)",
)
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, access: ProjectAdminAccess, session: DbSession
) -> MemberRead:
    service = MembershipService(session)
    member = await service.change_role(access, user_id, body.role)
    user = await service.member_user(member)
    await audit(
        session,
        access.user,
        "project.member_role_changed",
        project_id=access.project.id,
        target_type="user",
        target_id=user_id,
        after={"email": user.email, "role": member.role.value},
    )
    return _member_read(member, user.email)


@router.delete(
    "/{project_id}/members/{user_id}",
    status_code=204,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Remove a member (admins; the last owner stays)",
)
async def remove_member(
    user_id: uuid.UUID, access: ProjectAdminAccess, session: DbSession
) -> Response:
    await MembershipService(session).remove_member(access, user_id)
    await audit(
        session,
        access.user,
        "project.member_removed",
        project_id=access.project.id,
        target_type="user",
        target_id=user_id,
    )
    return Response(status_code=204)


@router.post(
    "/{project_id}/end-user-secret/rotate",
    response_model=EndUserSecretRotated,
    responses=error_responses(400, 401, 403, 404),
    summary="Issue a new end-user secret; the previous one verifies during the overlap window",
)
async def rotate_end_user_secret(
    access: ProjectAdminAccess, secrets: EndUserSecrets
) -> EndUserSecretRotated:
    secret, previous_expires_at = await secrets.rotate(access.project)
    await audit(
        secrets.session,
        access.user,
        "project.end_user_secret_rotated",
        project_id=access.project.id,
        target_type="project",
        target_id=access.project.id,
        after={
            "previousSecretExpiresAt": previous_expires_at.isoformat()
            if previous_expires_at
            else None
        },
    )
    return EndUserSecretRotated(
        end_user_secret=secret, previous_secret_expires_at=previous_expires_at
    )


def _end_user_auth_read(
    project: Project, auth: EndUserAuth | None, settings: Settings
) -> EndUserAuthRead:
    is_env = (
        settings.single_tenant_secret_key is not None
        and project.slug == settings.single_tenant_project_slug
        and from_environment(settings) is not None
    )
    if auth is None:
        return EndUserAuthRead(
            project_id=project.id,
            method=EndUserAuthMethod.PROJECT_SECRET,
            shared_secret_set=False,
            jwks_url=None,
            issuer=None,
            audience=None,
            claims=EndUserClaimNames(),
            cookie=None,
            allowed_origins=[],
            admin_roles=[],
            mode_from_query=False,
            from_environment=is_env,
            updated_at=None,
        )
    return EndUserAuthRead(
        project_id=project.id,
        method=auth.method,
        shared_secret_set=auth.shared_secret_ciphertext is not None,
        jwks_url=auth.jwks_url,
        issuer=auth.issuer,
        audience=auth.audience,
        claims=EndUserClaimNames(
            user=auth.user_claim,
            organization=auth.organization_claim,
            email=auth.email_claim,
            roles=auth.roles_claim,
        ),
        cookie=auth.cookie_name,
        allowed_origins=list(auth.allowed_origins),
        admin_roles=list(auth.admin_roles),
        mode_from_query=auth.mode_from_query,
        from_environment=is_env,
        updated_at=auth.updated_at,
    )


@router.get(
    "/{project_id}/end-user-auth",
    response_model=EndUserAuthRead,
    responses=error_responses(401, 404),
    summary="How the project accepts its end users' tokens (never the shared secret)",
)
async def get_end_user_auth(
    access: ProjectMemberAccess,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
) -> EndUserAuthRead:
    auth = await EndUserAuthService(session, secret_box).get(access.project.id)
    return _end_user_auth_read(access.project, auth, settings)


@router.put(
    "/{project_id}/end-user-auth",
    response_model=EndUserAuthRead,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Accept the tokens the app already issues: a shared secret or its identity "
    "provider's JWKS, claim names, a cookie, admin roles",
)
async def put_end_user_auth(
    body: EndUserAuthWrite,
    access: ProjectAdminAccess,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
) -> EndUserAuthRead:
    service = EndUserAuthService(session, secret_box)
    before = await service.get(access.project.id)
    before_view = (
        _end_user_auth_read(access.project, before, settings).model_dump(
            mode="json", by_alias=True, exclude={"updated_at", "from_environment"}
        )
        if before is not None
        else None
    )
    auth = await service.put(
        access.project,
        EndUserAuthInput(
            method=body.method,
            shared_secret=body.shared_secret,
            jwks_url=body.jwks_url,
            issuer=body.issuer,
            audience=body.audience,
            claims=ClaimNames(
                user=body.claims.user,
                organization=body.claims.organization,
                email=body.claims.email,
                roles=body.claims.roles,
            ),
            cookie_name=body.cookie,
            allowed_origins=tuple(body.allowed_origins),
            admin_roles=tuple(body.admin_roles),
            mode_from_query=body.mode_from_query,
        ),
        settings,
    )
    answer = _end_user_auth_read(access.project, auth, settings)
    await audit(
        session,
        access.user,
        "project.end_user_auth_updated",
        project_id=access.project.id,
        target_type="project",
        target_id=access.project.id,
        before=before_view,
        after={
            **answer.model_dump(
                mode="json", by_alias=True, exclude={"updated_at", "from_environment"}
            ),
            "sharedSecretChanged": body.shared_secret is not None,
        },
    )
    return answer
