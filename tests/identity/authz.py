"""Who may call identity's routes: sign-in, sessions, developer tokens, console API keys."""

from __future__ import annotations

from tests.authz import (
    CONSOLE_USER,
    PROJECT_ADMIN,
    PROJECT_MEMBER,
    PUBLIC,
    Declaration,
    Routes,
)
from tests.identity.factories import PASSWORD

ROUTES: Routes = {
    ("GET", "/login"): Declaration(PUBLIC),
    ("POST", "/api/v1/auth/login"): Declaration(
        PUBLIC, json=lambda w: {"email": w.member.email, "password": PASSWORD}
    ),
    ("POST", "/api/v1/auth/token"): Declaration(
        PUBLIC, form=lambda w: {"username": w.member.email, "password": PASSWORD}
    ),
    # developer tokens expire on their own: sign-out is for browser sessions (400 otherwise)
    ("POST", "/api/v1/auth/logout"): Declaration(
        {**CONSOLE_USER, "member_token": 400, "other_admin": 400, "superuser": 400}
    ),
    ("GET", "/api/v1/auth/me"): Declaration(CONSOLE_USER),
    # each caller changes their own password; only the member's is PASSWORD-then-new
    ("POST", "/api/v1/auth/password"): Declaration(
        CONSOLE_USER,
        json=lambda w: {"currentPassword": PASSWORD, "newPassword": "another long passphrase"},
    ),
    # a test-mode key: any member; a live-mode key is for admins only (403 PROJECT_ADMIN_REQUIRED
    # for a member: tests/identity/test_api_keys.py, TestLiveKeys)
    ("POST", "/api-dashboard/keys/generate"): Declaration(
        PROJECT_MEMBER,
        json=lambda w: {"name": "matrix", "projectId": str(w.project.id), "mode": "test"},
    ),
    ("GET", "/api-dashboard/keys"): Declaration(CONSOLE_USER),
    # the key was made by the owner: the creator or a project admin may deactivate it
    ("POST", "/api-dashboard/keys/deactivate"): Declaration(
        {**PROJECT_ADMIN, "member": 404, "member_token": 404},
        json=lambda w: {"keyId": str(w.key_id)},
    ),
}
