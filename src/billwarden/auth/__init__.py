"""Who is calling, and may they touch this project: every route's principal comes from here.

| alias                 | principal                                                              |
|-----------------------|------------------------------------------------------------------------|
| `CurrentConsoleUser`  | console user: session cookie (CSRF on unsafe methods) or developer JWT |
| `ConsoleAuth`         | the same, with the session it came through                             |
| `ProjectMemberAccess` | console user who is a member of `{project_id}`, or a superuser         |
| `ProjectAdminAccess`  | console user who is an owner or admin of `{project_id}`, or a superuser |
| `ProjectKey`          | project API key `Bearer bw_test_...` / `bw_live_...`                   |
| `EndUser`             | end-user JWT signed with the project's end-user secret                 |

auth builds on the identity and projects services; those never import it.
"""

from billwarden.auth.dependencies import (
    ConsoleAuth,
    CurrentConsoleUser,
    DeveloperTokenIssuer,
    EndUser,
    IdentityRules,
    ProjectAdminAccess,
    ProjectKey,
    ProjectMemberAccess,
    admin_access,
    key_viewer,
    member_access,
)
from billwarden.auth.principals import ConsolePrincipal, EndUserPrincipal, ProjectKeyPrincipal

__all__ = [
    "ConsoleAuth",
    "ConsolePrincipal",
    "CurrentConsoleUser",
    "DeveloperTokenIssuer",
    "EndUser",
    "EndUserPrincipal",
    "IdentityRules",
    "ProjectAdminAccess",
    "ProjectKey",
    "ProjectKeyPrincipal",
    "ProjectMemberAccess",
    "admin_access",
    "key_viewer",
    "member_access",
]
