"""Invitations to join a project.

An admin invites an email with a role; nothing is granted until the console user with that email,
signed in, accepts (with the link's token, or from their own list of pending invitations). The
answer to an invitation is the same whether or not a console user has that email, and it does the
same work either way: no user is looked up, so neither the answer nor its timing says whether an
account exists. An account created later with the email can accept. The token is shown once, to
the inviting admin; only its keyed hash is stored."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.identity.models import User
from billwarden.identity.service import normalize_email
from billwarden.projects.exceptions import (
    AlreadyMember,
    InvitationForAnotherEmail,
    InvitationNoLongerValid,
    InvitationNotFound,
    NotProjectOwner,
)
from billwarden.projects.models import Project, ProjectInvitation, ProjectMember, ProjectRole
from billwarden.projects.repository import (
    InvitationRepository,
    ProjectMemberRepository,
    ProjectRepository,
)
from billwarden.projects.service import ProjectAccess

INVITATION_TOKEN_PREFIX = "bwi_"  # noqa: S105 (a prefix, not a secret)
INVITATION_TOKEN_BYTES = 32  # 256 bits
_TOKEN = re.compile(rf"{INVITATION_TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}")


@dataclass(frozen=True)
class InvitationPolicy:
    ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> InvitationPolicy:
        return cls(ttl=timedelta(seconds=settings.invitation_ttl_seconds))


@dataclass(frozen=True)
class CreatedInvitation:
    """A new invitation; `token` exists only here and in the admin's answer."""

    invitation: ProjectInvitation
    token: str
    replaced: bool  # an outstanding invitation to the same email was revoked


@dataclass(frozen=True)
class PendingInvitation:
    invitation: ProjectInvitation
    project: Project
    invited_by: str | None


class InvitationService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox, policy: InvitationPolicy):
        self.session = session
        self.secret_box = secret_box
        self.policy = policy
        self.projects = ProjectRepository(session)
        self.members = ProjectMemberRepository(session)
        self.invitations = InvitationRepository(session)

    async def invite(
        self, access: ProjectAccess, email: str, role: ProjectRole
    ) -> CreatedInvitation:
        """Invite `email` with `role`, replacing an outstanding invitation to the same email."""
        email = normalize_email(email)
        if role is ProjectRole.OWNER and not access.is_owner:
            raise NotProjectOwner("Only an owner may invite an owner.")
        # concurrent invitations to one project take turns (re-inviting revokes, then inserts)
        await self.projects.lock(access.project.id)
        # the admin sees the members' emails already: this tells them nothing new
        if await self.members.get_by_email(access.project.id, email) is not None:
            raise AlreadyMember(f"{email} is already a member of this project.")
        now = utcnow()
        previous = await self.invitations.get_outstanding(access.project.id, email)
        if previous is not None:
            if previous.role is ProjectRole.OWNER and not access.is_owner:
                raise NotProjectOwner("Only an owner may replace an invitation to be an owner.")
            previous.revoked_at = now
            # the unique index allows one outstanding invitation: the revocation goes first
            await self.session.flush()
        token = INVITATION_TOKEN_PREFIX + secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
        invitation = await self.invitations.add(
            ProjectInvitation(
                project_id=access.project.id,
                email=email,
                role=role,
                token_hash=self.secret_box.keyed_hash(token),
                invited_by_id=access.user.id,
                created_at=now,
                expires_at=now + self.policy.ttl,
            )
        )
        return CreatedInvitation(invitation, token, replaced=previous is not None)

    async def list_outstanding(
        self, access: ProjectAccess, *, limit: int, offset: int
    ) -> tuple[list[tuple[ProjectInvitation, str | None]], int]:
        return await self.invitations.list_outstanding(
            access.project.id, limit=limit, offset=offset
        )

    async def revoke(
        self, access: ProjectAccess, invitation_id: uuid.UUID
    ) -> tuple[ProjectInvitation, bool]:
        """Revoke an invitation of the project, and whether it was outstanding until now
        (revoking again changes nothing)."""
        invitation = await self.invitations.get(invitation_id)
        if invitation is None or invitation.project_id != access.project.id:
            raise InvitationNotFound("No such invitation in this project.")
        if invitation.accepted_at is not None:
            raise InvitationNoLongerValid(
                "This invitation was accepted: remove the member instead."
            )
        if invitation.role is ProjectRole.OWNER and not access.is_owner:
            raise NotProjectOwner("Only an owner may revoke an invitation to be an owner.")
        if invitation.revoked_at is not None:
            return invitation, False
        invitation.revoked_at = utcnow()
        await self.session.flush()
        return invitation, True

    async def project_of(self, invitation: ProjectInvitation) -> Project:
        project = await self.projects.get(invitation.project_id)
        assert project is not None  # the invitation goes with its project
        return project

    async def pending_for(
        self, user: User, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[PendingInvitation], int]:
        """The invitations to the user's email that they can accept now, and how many."""
        rows, total = await self.invitations.list_pending_for(
            user.email, utcnow(), limit=limit, offset=offset
        )
        return [PendingInvitation(*row) for row in rows], total

    async def accept(
        self, user: User, *, token: str | None, invitation_id: uuid.UUID | None
    ) -> tuple[ProjectInvitation, ProjectMember]:
        """Make `user` a member with the invitation's role; the invitation is used up."""
        invitation = await self._find(user, token, invitation_id)
        if invitation.email != user.email:
            raise InvitationForAnotherEmail(
                "This invitation is for another email address: sign in as its addressee."
            )
        if not await self.invitations.claim(invitation.id, user.id, utcnow()):
            raise InvitationNoLongerValid(
                "This invitation was used, revoked, replaced by a newer one or has expired: ask "
                "the project's admins for a new one."
            )
        if await self.members.get_membership(invitation.project_id, user.id) is not None:
            raise AlreadyMember("You are already a member of this project.")
        try:
            # the same user accepting two invitations to one project at once: one wins
            async with self.session.begin_nested():
                member = await self.members.add(
                    ProjectMember(
                        project_id=invitation.project_id, user_id=user.id, role=invitation.role
                    )
                )
        except IntegrityError as exc:
            raise AlreadyMember("You are already a member of this project.") from exc
        await self.session.refresh(invitation)
        return invitation, member

    async def _find(
        self, user: User, token: str | None, invitation_id: uuid.UUID | None
    ) -> ProjectInvitation:
        invitation = None
        if token is not None:
            if _TOKEN.fullmatch(token):
                invitation = await self.invitations.get_by_hashes(
                    self.secret_box.lookup_hashes(token)
                )
        elif invitation_id is not None:
            found = await self.invitations.get(invitation_id)
            # by id, only the addressee's own invitations exist
            invitation = found if found is not None and found.email == user.email else None
        if invitation is None:
            raise InvitationNotFound("No such invitation.")
        return invitation
