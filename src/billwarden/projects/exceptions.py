"""The projects domain's errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import BillwardenError, Conflict, Forbidden, InvalidInput, NotFound


class ProjectNotFound(NotFound):
    code = "PROJECT_NOT_FOUND"


class SlugTaken(Conflict):
    code = "PROJECT_SLUG_TAKEN"


class NotProjectAdmin(Forbidden):
    code = "PROJECT_ADMIN_REQUIRED"


class NotProjectOwner(Forbidden):
    code = "PROJECT_OWNER_REQUIRED"


class LastOwner(Conflict):
    code = "LAST_OWNER"


class AlreadyMember(Conflict):
    code = "ALREADY_MEMBER"


class MemberNotFound(NotFound):
    code = "MEMBER_NOT_FOUND"


class InvalidStripeKey(InvalidInput):
    code = "INVALID_STRIPE_KEY"


class StripeNotConfigured(NotFound):
    code = "STRIPE_NOT_CONFIGURED"


class InvitationNotFound(NotFound):
    code = "INVITATION_NOT_FOUND"


class InvitationForAnotherEmail(Forbidden):
    code = "INVITATION_FOR_ANOTHER_EMAIL"


class InvitationNoLongerValid(BillwardenError):
    """Accepted already, revoked (or replaced by a newer invitation), or expired."""

    code = "INVITATION_NO_LONGER_VALID"
    status_code = 410
