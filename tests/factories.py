"""Every domain's test factories on one session, for tests that set up a scratch database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from tests.catalog.factories import Catalogs
from tests.checkout.factories import Shops
from tests.entitlements.factories import Snapshots
from tests.identity.factories import People
from tests.projects.factories import Tenants


@dataclass(frozen=True)
class Factories:
    people: People
    tenants: Tenants
    catalogs: Catalogs
    shops: Shops
    snapshots: Snapshots

    @classmethod
    def on(cls, session: AsyncSession, secret_box: SecretBox, settings: Settings) -> Factories:
        return cls(
            People(session, secret_box, settings),
            Tenants(session, secret_box, settings),
            Catalogs(session),
            Shops(session, secret_box, settings),
            Snapshots(session),
        )
