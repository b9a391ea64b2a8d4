"""The authorization matrix's vocabulary: the kinds of caller, the policies a route declares, and
the world of two projects every cell runs in. Each domain declares its routes in
`tests/<domain>/authz.py` (a `ROUTES` dict, and optionally `async def prepare(world, made)` to add
what its routes need to the world); `tests/test_authorization_matrix.py` merges them from the one
list of domains."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from billwarden.identity.models import User
from tests.projects.factories import ProjectWithSecret

ALLOW = 200  # any 2xx
SAFE = {"GET", "HEAD", "OPTIONS"}
PRINCIPALS = (
    "anonymous",
    "member",  # member (role member) of project A, browser session + CSRF token
    "member_token",  # the same member with a developer JWT
    "member_no_csrf",  # the member's browser session, without the CSRF token
    "admin",  # admin of project A, browser session
    "other_admin",  # owner of project B only, developer JWT
    "superuser",  # developer JWT
    "key",  # API key of project A
    "other_key",  # API key of project B
    "deactivated_key",  # deactivated API key of project A
    "end_user",  # valid end-user JWT of project A
    "end_user_expired",
    "end_user_wrong_secret",
    "end_user_other_project",  # valid end-user JWT of project B
)
MACHINE = (
    "key",
    "other_key",
    "deactivated_key",
    "end_user",
    "end_user_expired",
    "end_user_wrong_secret",
    "end_user_other_project",
)


def policy(**cells: int) -> dict[str, int]:
    """Expected status per principal. `member_no_csrf` answers as `member` does; on unsafe
    requests to routes that take console sessions it must get 403 instead (checked per request)."""
    cells = {**cells, "member_no_csrf": cells["member"]}
    missing = set(PRINCIPALS) - set(cells)
    assert not missing, f"undeclared principals: {missing}"
    return cells


PUBLIC = policy(**dict.fromkeys(PRINCIPALS, ALLOW))
PROJECT_KEY = policy(**{**dict.fromkeys(PRINCIPALS, 401), "key": ALLOW, "other_key": ALLOW})
END_USER = policy(
    **{**dict.fromkeys(PRINCIPALS, 401), "end_user": ALLOW, "end_user_other_project": ALLOW}
)
CONSOLE_USER = policy(
    anonymous=401,
    member=ALLOW,
    member_token=ALLOW,
    admin=ALLOW,
    other_admin=ALLOW,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)
PROJECT_MEMBER = policy(
    anonymous=401,
    member=ALLOW,
    member_token=ALLOW,
    admin=ALLOW,
    other_admin=404,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)
PROJECT_ADMIN = policy(
    anonymous=401,
    member=403,
    member_token=403,
    admin=ALLOW,
    other_admin=404,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)


@dataclass
class World:
    """Two projects and everyone who may (or may not) touch project A. `extra` holds what a
    domain's `prepare` adds for its own routes."""

    project: ProjectWithSecret
    other_project: ProjectWithSecret
    owner: User
    member: User
    admin: User
    candidate: User  # a console user of neither project, to be added as a member
    key_id: uuid.UUID
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    unsafe_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


Body = Callable[[World], dict[str, Any] | None]
Routes = dict[tuple[str, str], "Declaration"]


@dataclass(frozen=True)
class Declaration:
    expected: dict[str, int]
    # the answer names the caller's own project (probes of tenant-backend and end-user auth)
    answers_own_project: bool = False
    # for routes whose answer holds a project's data without naming it: whether the answer
    # shows project A's data; the matrix requires it for project A's callers only
    shows_project_a: Callable[[Any], bool] | None = None
    json: Body = lambda world: None
    form: Body = lambda world: None
    path: Callable[[World], dict[str, str]] = lambda world: {}
    query: Callable[[World], dict[str, str]] = lambda world: {}


def project_path(world: World) -> dict[str, str]:
    return {"project_id": str(world.project.id)}
