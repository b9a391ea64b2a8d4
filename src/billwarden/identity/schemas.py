"""Wire shapes for sign-in, developer tokens and API keys (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel


class LoginRequest(CamelModel):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserRead(CamelModel):
    id: uuid.UUID
    email: str
    is_superuser: bool
    created_at: datetime


class LoginResponse(CamelModel):
    user: UserRead
    csrf_token: str = Field(
        description="Send it as X-CSRF-Token on every unsafe request made with the session "
        "cookie (also set in the readable bw_csrf cookie)."
    )
    expires_at: datetime
    idle_expires_at: datetime


class Me(CamelModel):
    user: UserRead
    auth_method: Literal["session", "token"]


class PasswordChange(CamelModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class PasswordChanged(CamelModel):
    csrf_token: str | None = Field(
        description="The new session's CSRF token when the change came from a browser session "
        "(every other session and developer token is revoked)."
    )


class DeveloperToken(BaseModel):
    """OAuth2 token response (RFC 6749 names, hence snake_case)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class ApiKeyCreate(CamelModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    project_id: uuid.UUID | None = Field(
        default=None,
        description="The key's project; left out, the single-tenant project (seed 000 sends "
        "only a name).",
    )
    mode: Mode | None = Field(
        default=None, description="Left out: test (the single-tenant project's mode for it)."
    )


class ApiKeyRead(CamelModel):
    key_id: uuid.UUID
    name: str
    prefix: str
    mode: Mode
    project_id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    active: bool


class ApiKeyCreated(ApiKeyRead):
    api_key: str = Field(description="The key itself. Shown once: store it now.")


class ApiKeyDeactivate(CamelModel):
    key_id: uuid.UUID
