"""Who may call the projects routes: projects, members, end-user secrets, Stripe configuration."""

from __future__ import annotations

import uuid

from billwarden.core.modes import Mode
from billwarden.projects.stripe_config import StripeConfigService
from tests.authz import (
    CONSOLE_USER,
    PROJECT_ADMIN,
    PROJECT_MEMBER,
    Declaration,
    Routes,
    World,
    project_path,
)
from tests.factories import Factories


def _member_path(world: World) -> dict[str, str]:
    return {"project_id": str(world.project.id), "user_id": str(world.member.id)}


STRIPE = "/api/v1/payments/stripe/projects/{project_id}"

ROUTES: Routes = {
    ("POST", "/api/v1/projects"): Declaration(CONSOLE_USER, json=lambda w: {"name": "Matrix"}),
    ("GET", "/api/v1/projects"): Declaration(CONSOLE_USER),
    ("GET", "/api/v1/projects/{project_id}"): Declaration(PROJECT_MEMBER, path=project_path),
    ("PATCH", "/api/v1/projects/{project_id}"): Declaration(
        PROJECT_ADMIN, path=project_path, json=lambda w: {"name": "Renamed"}
    ),
    ("GET", "/api/v1/projects/{project_id}/members"): Declaration(PROJECT_ADMIN, path=project_path),
    ("POST", "/api/v1/projects/{project_id}/members"): Declaration(
        PROJECT_ADMIN,
        path=project_path,
        json=lambda w: {"email": w.candidate.email, "role": "member"},
    ),
    ("GET", "/api/v1/projects/{project_id}/invitations"): Declaration(
        PROJECT_ADMIN, path=project_path
    ),
    # an invitation of project A to someone outside it (made by `prepare`)
    ("DELETE", "/api/v1/projects/{project_id}/invitations/{invitation_id}"): Declaration(
        PROJECT_ADMIN,
        path=lambda w: {
            "project_id": str(w.project.id),
            "invitation_id": str(w.extra["invitation_id"]),
        },
    ),
    ("GET", "/api/v1/invitations"): Declaration(CONSOLE_USER),
    # project B invited the member by email; by id, only its addressee finds it
    ("POST", "/api/v1/invitations/accept"): Declaration(
        {**CONSOLE_USER, "admin": 404, "other_admin": 404, "superuser": 404},
        json=lambda w: {"invitationId": str(w.extra["member_invitation_id"])},
    ),
    ("PATCH", "/api/v1/projects/{project_id}/members/{user_id}"): Declaration(
        PROJECT_ADMIN, path=_member_path, json=lambda w: {"role": "admin"}
    ),
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"): Declaration(
        PROJECT_ADMIN, path=_member_path
    ),
    ("POST", "/api/v1/projects/{project_id}/end-user-secret/rotate"): Declaration(
        PROJECT_ADMIN, path=project_path
    ),
    ("GET", "/api/v1/projects/{project_id}/end-user-auth"): Declaration(
        PROJECT_MEMBER, path=project_path
    ),
    # the project keeps accepting its own secret's tokens: the matrix's end users stay valid
    ("PUT", "/api/v1/projects/{project_id}/end-user-auth"): Declaration(
        PROJECT_ADMIN, path=project_path, json=lambda w: {"adminRoles": ["OWNER"]}
    ),
    ("GET", f"{STRIPE}/config"): Declaration(PROJECT_MEMBER, path=project_path),
    ("PUT", f"{STRIPE}/config"): Declaration(
        PROJECT_ADMIN, path=project_path, json=lambda w: {"secretKey": "sk_test_matrix00000001"}
    ),
    # there is a configuration to deactivate (made by the world)
    ("DELETE", f"{STRIPE}/config"): Declaration(PROJECT_ADMIN, path=project_path),
    ("GET", f"{STRIPE}/webhook-urls"): Declaration(PROJECT_MEMBER, path=project_path),
    ("POST", f"{STRIPE}/validate-credentials"): Declaration(PROJECT_ADMIN, path=project_path),
}


async def prepare(world: World, made: Factories) -> None:
    """Project A has a test-mode Stripe configuration (to read, replace and deactivate) and an
    outstanding invitation; project B has invited project A's member."""
    invited = await made.tenants.invite(world.project, "invitee@example.test")
    world.extra["invitation_id"] = invited.invitation.id
    to_member = await made.tenants.invite(
        world.other_project, world.member.email, invited_by=world.owner
    )
    world.extra["member_invitation_id"] = to_member.invitation.id
    await StripeConfigService(made.tenants.session, made.tenants.secret_box).set_stripe_config(
        world.project.project, Mode.TEST, secret_key=f"sk_test_{uuid.uuid4().hex}"
    )
