"""Wire shapes for sign-in, developer tokens and API keys (camelCase on the wire)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from billwarden.db.base import Mode


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


ItemT = TypeVar("ItemT")


class Page(CamelModel, Generic[ItemT]):
    """One page of a list: `items`, the `total` count, and the `limit`/`offset` used."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int


# both databases take 64-bit offsets; a bound far below that keeps huge values a 400, not a 500
MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


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
    project_id: uuid.UUID
    mode: Mode = Mode.TEST


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
