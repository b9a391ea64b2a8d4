"""`billwarden adopt-subscriptions`, run as a team moving to billwarden runs it: the subscribers
the previous system sold in Stripe (its own metadata on the subscription or the customer, none of
billwarden's) get their access at once, audited; a second run adopts nothing; a dry run changes
nothing; what cannot be adopted is listed and left alone."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.compat.single_tenant import SingleTenant, single_tenant
from tests.conftest import TEST_SECRET_KEY, Scratch
from tests.emulator_helpers import emulator_helper
from tests.test_cli import run_cli

ME = "/api/v1/entitlements/me"
AUDIT = "/api/v1/admin/audit"
BW_KEYS = {"bw_project", "bw_mode", "bw_subject_type", "bw_subject_id"}


def adopt(st: SingleTenant, *options: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command, as a separate process with the environment the served billwarden has."""
    env = {
        "BILLWARDEN_DATABASE_URL": st.settings.database_url,
        "BILLWARDEN_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_SECRET_KEY": st.stripe_key,
        "BILLWARDEN_STRIPE_API_BASE": st.emulator_url,
        "BILLWARDEN_STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    done = run_cli("adopt-subscriptions", *options, env=env, cwd=cwd)
    assert "Traceback" not in done.stderr, done.stderr
    assert st.stripe_key not in done.stdout + done.stderr
    return done


def count(output: str, row: str) -> int:
    """A row of the summary table."""
    found = re.search(rf"{re.escape(row)}\s*│\s*(\d+)\s*│", output)
    assert found is not None, output
    return int(found.group(1))


def legacy_subscription(
    st: SingleTenant,
    *,
    metadata: dict[str, str],
    customer_metadata: dict[str, str] | None = None,
    customer: str | None = None,
) -> tuple[str, str]:
    """A subscription as the previous system made it, straight in Stripe, on a customer with
    no email of its own: (its id, customer)."""
    if customer is None:
        customer = st.stripe.v1.customers.create({"metadata": customer_metadata or {}}).id
    made = st.stripe.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": st.prices["premium_monthly"]}],
            "metadata": metadata,
        }
    )
    return made.id, customer


def subscription_metadata(st: SingleTenant, subscription: str) -> dict[str, Any]:
    metadata = st.stripe.v1.subscriptions.retrieve(subscription).metadata
    return metadata.to_dict() if metadata is not None else {}


async def me(st: SingleTenant, sub: str, **claims: Any) -> dict[str, Any]:
    answer = await st.http.get(ME, headers=st.bearer(st.token(sub, **claims)))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


class TestAdoptSubscriptions:
    async def test_the_previous_systems_subscribers_get_their_access_once(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path) as st:
            # seed 001's way: the user on the subscription, under its own keys
            paid, customer = legacy_subscription(
                st, metadata={"userExternalId": "u1", "userEmail": "u1@example.test"}
            )
            keyless, keyless_customer = legacy_subscription(st, metadata={"plan": "premium"})
            other_project = str(uuid.uuid4())
            foreign, _ = legacy_subscription(
                st,
                metadata={
                    "bw_project": other_project,
                    "bw_mode": "test",
                    "bw_subject_type": "user",
                    "bw_subject_id": "u9",
                    "userExternalId": "u9",
                },
            )
            # ada's customer is billwarden's; a subscription on it names someone else
            made = await st.http.post(
                "/api/v1/payments/stripe/create-customer",
                json={},
                headers=st.bearer(st.token("ada", email="ada@example.test")),
            )
            assert made.status_code == 200, made.text
            clash, _ = legacy_subscription(
                st, metadata={"userExternalId": "zed"}, customer=made.json()["customerId"]
            )
            before = await me(st, "u1")
            assert before["hasPremiumAccess"] is False

            dry = adopt(
                st,
                "--user-key", "userExternalId", "--email-key", "userEmail", "--dry-run",
                cwd=tmp_path,
            )  # fmt: skip
            assert dry.returncode == 0, dry.stderr
            assert "Dry run: nothing was changed." in dry.stdout
            assert count(dry.stdout, "would adopt") == 1
            assert f"would adopt: {paid} customer {customer} -> user u1" in dry.stdout
            assert not BW_KEYS & set(subscription_metadata(st, paid))
            assert (await me(st, "u1"))["hasPremiumAccess"] is False

            done = adopt(
                st, "--user-key", "userExternalId", "--email-key", "userEmail", cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            assert count(done.stdout, "Stripe subscriptions read") == 4
            assert count(done.stdout, "adopted now") == 1
            assert count(done.stdout, "without a subject") == 1
            assert count(done.stdout, "conflicts (refused)") == 1
            assert count(done.stdout, "another project's (left alone)") == 1
            assert f"adopted now: {paid} customer {customer} -> user u1 (PREMIUM_MONTHLY" in (
                done.stdout
            )
            assert (
                f"without a subject: {keyless} customer {keyless_customer} status active"
                in done.stdout
            )
            assert f"conflict: {clash} " in done.stdout and "user ada's" in done.stdout
            assert f"another project's: {foreign}" in done.stdout

            # access at once, with the seed's fields
            after = await me(st, "u1")
            assert after["hasPremiumAccess"] is True
            record = after["entitlement"]
            assert record["userExternalId"] == "u1"
            assert record["userEmail"] == "u1@example.test"
            assert (record["plan"], record["status"]) == ("PREMIUM_MONTHLY", "ACTIVE")
            assert record["stripeSubscriptionId"] == paid
            assert record["stripeCustomerId"] == customer
            # billwarden's keys next to the old ones, on the subscription and its customer
            customer_metadata = st.stripe.v1.customers.retrieve(customer).metadata
            assert customer_metadata is not None
            for metadata in (subscription_metadata(st, paid), customer_metadata.to_dict()):
                assert metadata["bw_project"] == str(st.project_id)
                assert (metadata["bw_mode"], metadata["bw_subject_type"]) == ("test", "user")
                assert metadata["bw_subject_id"] == "u1"
            assert subscription_metadata(st, paid)["userExternalId"] == "u1"
            # the refused and the foreign ones are untouched, and grant no one
            assert not BW_KEYS & set(subscription_metadata(st, clash))
            assert subscription_metadata(st, foreign)["bw_project"] == (other_project)
            assert (await me(st, "zed"))["hasPremiumAccess"] is False

            admin = st.bearer(await st.console_admin())
            params = {"projectId": str(st.project_id), "action": "subscriptions.adopted"}
            audit = await st.http.get(AUDIT, params=params, headers=admin)
            assert audit.status_code == 200, audit.text
            entries = audit.json()["items"]
            assert [(e["actor"], e["targetId"]) for e in entries] == [("adopt-subscriptions", paid)]
            assert entries[0]["after"]["subjectId"] == "u1"
            assert entries[0]["reason"] == "userExternalId=u1 in the subscription's metadata"

            again = adopt(
                st, "--user-key", "userExternalId", "--email-key", "userEmail", cwd=tmp_path
            )
            assert again.returncode == 0, again.stderr
            assert count(again.stdout, "adopted now") == 0
            assert count(again.stdout, "already billwarden's") == 1
            audit = await st.http.get(AUDIT, params=params, headers=admin)
            assert len(audit.json()["items"]) == 1

    async def test_organizations_customers_metadata_and_one_failure(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path) as st:
            # the organization wins when an object names both; the customer speaks when the
            # subscription says nothing
            for_org, _ = legacy_subscription(
                st, metadata={"organization_id": "acme", "userId": "u2"}
            )
            by_customer, _ = legacy_subscription(
                st, metadata={}, customer_metadata={"userId": "u3"}
            )
            failing, failing_customer = legacy_subscription(st, metadata={"userId": "u4"})
            await emulator_helper(
                st.emulator_url,
                st.stripe_key,
                "/_emulator/faults",
                json={
                    "requests": [
                        {"method": "POST", "path": f"/v1/subscriptions/{failing}", "status": 500}
                    ]
                },
            )
            keys = ("--organization-key", "organization_id", "--user-key", "userId")
            done = adopt(st, *keys, cwd=tmp_path)
            assert done.returncode == 1, done.stdout + done.stderr
            assert count(done.stdout, "adopted now") == 2
            assert count(done.stdout, "errors") == 1
            assert f"error: {failing} customer {failing_customer}: Stripe is unavailable" in (
                done.stdout
            )
            assert f"adopted now: {for_org} " in done.stdout
            assert "-> organization acme (PREMIUM_MONTHLY" in done.stdout
            assert f"adopted now: {by_customer} " in done.stdout
            assert (await me(st, "u2", organization="acme"))["hasPremiumAccess"] is True
            assert (await me(st, "u2"))["hasPremiumAccess"] is False
            assert (await me(st, "u3"))["hasPremiumAccess"] is True
            assert (await me(st, "u4"))["hasPremiumAccess"] is False

            # the failed one is adopted by the next run, the others are not again
            retried = adopt(st, *keys, cwd=tmp_path)
            assert retried.returncode == 0, retried.stdout + retried.stderr
            assert count(retried.stdout, "adopted now") == 1
            assert f"adopted now: {failing} " in retried.stdout
            assert (await me(st, "u4"))["hasPremiumAccess"] is True

            # bad input: a clear error, exit status 2
            unknown = adopt(st, "--project", "nowhere", *keys, cwd=tmp_path)
            assert unknown.returncode == 2
            assert "No project with id or slug 'nowhere'" in unknown.stderr
            keyless = adopt(st, cwd=tmp_path)
            assert keyless.returncode == 2
            assert "--user-key and/or --organization-key" in keyless.stderr
