"""Who is calling, and may they touch this project: every route's principal comes from here.

| alias                 | principal                                                              |
|-----------------------|------------------------------------------------------------------------|
| `CurrentConsoleUser`  | console user: session cookie (CSRF on unsafe methods) or developer JWT |
| `ConsoleAuth`         | the same, with the session it came through                             |
| `OptionalConsoleUser` | the same or None (the console's pages send others to sign in)          |
| `ProjectMemberAccess` | console user who is a member of `{project_id}`, or a superuser         |
| `ProjectAdminAccess`  | console user who is an owner or admin of `{project_id}`, or a superuser |
| `ProjectKey`          | project API key `Bearer bw_test_...` / `bw_live_...`                   |
| `EndUser`             | end-user JWT signed with the project's end-user secret                 |
| `BillingCaller`       | either of the last two: an end user, or a key naming the subject       |
| `EndUserCaller`       | an end user only, as a `BillingPrincipal` (the seeds' billing routes)  |
| `SeedAdmin`           | console admin of the project, or an end user with one of `adminRoles`  |

auth builds on the identity and projects services; those never import it.
"""

from billwarden.auth.dependencies import (
    BillingCaller,
    ConsoleAuth,
    CurrentConsoleUser,
    DeveloperTokenIssuer,
    EndUser,
    EndUserCaller,
    IdentityRules,
    OptionalConsoleUser,
    ProjectAdminAccess,
    ProjectKey,
    ProjectMemberAccess,
    SeedAdmin,
    admin_access,
    key_viewer,
    member_access,
    request_end_user,
    single_tenant_project,
)
from billwarden.auth.principals import (
    BillingPrincipal,
    ConsolePrincipal,
    EndUserPrincipal,
    ProjectKeyPrincipal,
    SeedAdminPrincipal,
    end_user_subject,
)

__all__ = [
    "BillingCaller",
    "BillingPrincipal",
    "ConsoleAuth",
    "ConsolePrincipal",
    "CurrentConsoleUser",
    "DeveloperTokenIssuer",
    "EndUser",
    "EndUserCaller",
    "EndUserPrincipal",
    "IdentityRules",
    "OptionalConsoleUser",
    "ProjectAdminAccess",
    "ProjectKey",
    "ProjectKeyPrincipal",
    "ProjectMemberAccess",
    "SeedAdmin",
    "SeedAdminPrincipal",
    "admin_access",
    "end_user_subject",
    "key_viewer",
    "member_access",
    "request_end_user",
    "single_tenant_project",
]
