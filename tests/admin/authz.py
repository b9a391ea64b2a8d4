"""Who may open the console's pages: any console user (each sees only the projects they are a
member of); everyone else is sent to sign in (303). The pages only read: every write they make
goes through the JSON API, whose routes declare their own callers."""

from __future__ import annotations

import uuid

from tests.authz import ALLOW, MACHINE, Declaration, Routes, World, policy

SIGN_IN = 303
CONSOLE_PAGE = policy(
    anonymous=SIGN_IN,
    member=ALLOW,
    member_token=ALLOW,
    admin=ALLOW,
    other_admin=ALLOW,  # their own projects: project A is not named (the matrix checks it)
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, SIGN_IN),
)


def _project_a(world: World) -> dict[str, str]:
    return {"project": str(world.project.id)}


def _record(world: World) -> dict[str, str]:
    return {"record_id": str(uuid.uuid4())}


ROUTES: Routes = {
    ("GET", "/admin"): Declaration(policy(**dict.fromkeys(CONSOLE_PAGE, SIGN_IN))),
    **{
        ("GET", f"/admin/{page}"): Declaration(CONSOLE_PAGE, query=_project_a)
        for page in (
            "billing",
            "webhooks",
            "payments",
            "audit",
            "keys",
            "stripe",
            "notifications",
            "invitations",
        )
    },
    # the pages' scripts and styles (and the sign-in page's): anyone may load them
    ("GET", "/admin/static/{name}"): Declaration(
        policy(**dict.fromkeys(CONSOLE_PAGE, ALLOW)), path=lambda w: {"name": "console.js"}
    ),
    # an unknown record sends back to the billing page, whoever asks
    ("GET", "/admin/billing/records/{record_id}"): Declaration(
        policy(**dict.fromkeys(CONSOLE_PAGE, SIGN_IN)), path=_record, query=_project_a
    ),
}
