"""The `billwarden` command."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import jwt
import typer
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden import __version__, domains
from billwarden.app import build_inbox_worker, build_workers, create_app
from billwarden.audit.service import Actor, AuditLog
from billwarden.catalog.exceptions import InvalidCatalog
from billwarden.catalog.service import CatalogPricing, CatalogService, read_catalog_file
from billwarden.catalog.service.document import CatalogDocument
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_MAX_LENGTH, SubjectType
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db import migrate as migrations
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import BillwardenError
from billwarden.identity.exceptions import UserNotFound
from billwarden.identity.service import ApiKeyService, IdentityPolicy, UserService
from billwarden.kit.cli import fail, load_settings, run_in_unit_of_work
from billwarden.kit.state import build_secret_box
from billwarden.projects.key_rotation import re_encrypt_stored_secrets
from billwarden.projects.models import Project
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectService
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.projects.stripe_endpoints import webhook_url
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.service import (
    META_MODE,
    META_PROJECT,
    META_SUBJECT_ID,
    META_SUBJECT_TYPE,
)
from billwarden.webhooks.service import StripeAccess, catch_up, store_in

cli = typer.Typer(
    name="billwarden", help="A self-hosted billing control plane for Stripe.", no_args_is_help=True
)
domains.register_commands(cli)


def _use_dev_secret_key(settings: Settings) -> Settings:
    """Load the development secret key file, creating it (mode 0600) on first use."""
    if settings.secret_key is not None:
        return settings
    path = settings.secret_key_file
    if path.exists():
        key = path.read_text().strip()
        typer.echo(f"Using the secret key in {path}.")
    else:
        key = secrets.token_urlsafe(48)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")
        typer.echo(
            f"Created a new secret key in {path} (mode 0600). It encrypts Stripe secrets at "
            "rest: keep it, or set BILLWARDEN_SECRET_KEY."
        )
    # worker processes read their settings from the environment
    os.environ["BILLWARDEN_SECRET_KEY"] = key
    return settings.model_copy(update={"secret_key": SecretStr(key)})


def _run_migrations(settings: Settings) -> str | None:
    engine = engine_from_settings(settings)

    async def run() -> str | None:
        try:
            await migrations.upgrade(engine)
            async with engine.connect() as connection:
                return await migrations.current_revision(connection)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@cli.command()
def version() -> None:
    """Print billwarden's version."""
    typer.echo(__version__)


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    settings = load_settings()
    revision = _run_migrations(settings)
    typer.echo(f"Database at migration {revision}.")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    dev: Annotated[
        bool, typer.Option("--dev", help="Development mode: text logs, a local secret key file.")
    ] = False,
    auto_migrate: Annotated[
        bool,
        typer.Option("--migrate/--no-migrate", help="Run migrations before starting."),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses of reverse proxies whose X-Forwarded-For is trusted "
            "(the client address is what login throttling counts); none by default."
        ),
    ] = "",
) -> None:
    """Run the HTTP API."""
    if dev:
        os.environ["BILLWARDEN_ENVIRONMENT"] = "development"
    settings = load_settings()
    if dev:
        settings = _use_dev_secret_key(settings)
    elif settings.secret_key is None:
        raise fail(
            "BILLWARDEN_SECRET_KEY is not set; billwarden refuses to start without the key that "
            "encrypts Stripe secrets at rest (use --dev for a local development key)."
        )
    try:
        build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
    if auto_migrate and settings.auto_migrate:
        revision = _run_migrations(settings)
        typer.echo(f"Database at migration {revision}.")
    uvicorn.run(
        "billwarden.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        server_header=False,
        # with no trusted proxy, X-Forwarded-For is ignored: a client cannot pick its address
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
    )


@cli.command()
def worker() -> None:
    """Apply stored Stripe events (the webhook inbox), send notifications and Stripe meter events
    (the outboxes) and run reconciliations until stopped; run as many as you like against one
    PostgreSQL."""
    settings = load_settings()
    engine = engine_from_settings(settings)

    async def run() -> None:
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        sessionmaker = create_sessionmaker(engine)
        secret_box = build_secret_box(settings)
        workers = build_workers(sessionmaker, settings, gateway, secret_box)

        def stop_all() -> None:
            for each in workers.values():
                each.stopping.set()

        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, stop_all)
        typer.echo(
            "Applying stored Stripe events, sending notifications and meter events, running "
            "reconciliations; stop with Ctrl-C."
        )
        try:
            await asyncio.gather(*(each.run_forever() for each in workers.values()))
        finally:
            await gateway.close()
            await engine.dispose()

    asyncio.run(run())


events_cli = typer.Typer(help="Stripe's events.", no_args_is_help=True)
cli.add_typer(events_cli, name="events")
_SINCE = re.compile(r"(\d+)([dhm])")


def _since(text: str) -> datetime:
    """`2d`, `12h`, `30m`, or an ISO time (UTC unless it says otherwise)."""
    relative = _SINCE.fullmatch(text.strip())
    if relative is not None:
        amount, unit = int(relative.group(1)), relative.group(2)
        span = {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(minutes=amount)
        )
        return datetime.now(UTC) - span
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"--since takes 2d, 12h, 30m or an ISO time, not {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@events_cli.command("catch-up")
def catch_up_events(
    project: Annotated[str, typer.Option("--project", help="Project id or slug.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode.")] = Mode.TEST,
    since: Annotated[
        str, typer.Option(help="How far back: 2d, 12h, 30m or an ISO time (Stripe keeps 30 days).")
    ] = "2d",
) -> None:
    """Store every event Stripe kept that the inbox lacks (after the webhook endpoint was down),
    then apply them through the normal path, as a worker does."""
    start = _since(since)
    settings = load_settings()
    try:
        secret_box = build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc

    async def run() -> tuple[int, int, int]:
        engine = engine_from_settings(settings)
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        sessionmaker = create_sessionmaker(engine)
        try:
            async with unit_of_work(sessionmaker, write=False) as session:
                found = await ProjectService(session).find_project(project)
                credentials = await StripeConfigService(session, secret_box).get_credentials(
                    found.id, mode
                )

            async def store(
                project_id: uuid.UUID, page_mode: Mode, events: list[tuple[dict[str, Any], bytes]]
            ) -> int:
                # a short transaction per page: the writer is never held while Stripe is read
                async with unit_of_work(sessionmaker) as session:
                    return await store_in(session)(project_id, page_mode, events)

            caught = await catch_up(
                StripeAccess(gateway, secret_box),
                credentials.secret_key,
                found.id,
                mode,
                start,
                store,
            )
            async with unit_of_work(sessionmaker) as session:
                await AuditLog(session).record(
                    Actor.system("command line"),
                    "webhooks.caught_up",
                    target_type="project",
                    target_id=str(found.id),
                    project_id=found.id,
                    mode=mode,
                    after={
                        "since": start.isoformat(),
                        "seen": caught.seen,
                        "stored": caught.stored,
                    },
                )
            inbox = build_inbox_worker(sessionmaker, settings, gateway, secret_box)
            applied = 0
            while claimed := await inbox.run_once():
                applied += claimed
            return caught.seen, caught.stored, applied
        finally:
            await gateway.close()
            await engine.dispose()

    try:
        seen, stored, applied = asyncio.run(run())
    except BillwardenError as exc:
        raise fail(exc.message) from exc
    typer.echo(
        f"{seen} event(s) in Stripe since {start:%Y-%m-%d %H:%M} UTC; {stored} the inbox lacked, "
        f"stored; {applied} pending event(s) applied."
    )


DEMO_PROJECT_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.billwarden.test"
DEMO_KEY_NAME = "demo key"
DEMO_END_USER = "demo-user"
DEMO_END_USER_EMAIL = "demo-user@demo.billwarden.test"
DEMO_TOKEN_HOURS = 24
# the sample catalog of the source checkout `make demo` runs from
DEMO_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.toml"
# metadata on the demo's emulator webhook endpoint: which stored signing secret is its own
ENDPOINT_SECRET_FINGERPRINT = "billwarden_secret_sha256"  # noqa: S105 (a metadata key)


@contextmanager
def _emulator_in_background(host: str, port: int, snapshot: Path) -> Iterator[None]:
    """Serve the emulator from a background thread of this process; stop it on the way out,
    so its snapshot is saved with the last changes."""
    from billwarden_emulator import EmulatorConfig
    from billwarden_emulator import create_app as create_emulator_app
    from billwarden_emulator.config import KEEP_ALIVE_SECONDS

    server = uvicorn.Server(
        uvicorn.Config(
            create_emulator_app(EmulatorConfig(snapshot_path=snapshot)),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    thread = threading.Thread(target=server.run, name="billwarden-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise fail(f"the Stripe emulator could not start on {host}:{port}")
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class DemoAccess:
    project: Project
    admin_email: str
    admin_password: str
    api_key: str
    end_user_secret: str


async def _prepare_demo(
    session: AsyncSession, secret_box: SecretBox, settings: Settings
) -> DemoAccess:
    """The demo project on the emulator, its admin and a key: fresh credentials every start, so
    what is printed always works (the previous demo key and password stop working)."""
    users = UserService(session, secret_box, IdentityPolicy.from_settings(settings))
    admin_password = secrets.token_urlsafe(12)
    try:
        admin = await users.find_user_by_email(DEMO_ADMIN_EMAIL)
        await users.set_password(admin, admin_password)
    except UserNotFound:
        admin = await users.create_user(DEMO_ADMIN_EMAIL, admin_password, is_superuser=True)
    projects = ProjectService(session)
    project = await projects.find_by_slug(DEMO_PROJECT_SLUG)
    if project is None:
        project = await MembershipService(session).create_project(
            admin, "Demo project", DEMO_PROJECT_SLUG
        )
    configs = StripeConfigService(session, secret_box)
    if await configs.get_active(project.id, Mode.TEST) is None:
        # every emulator key is its own account: a random one, kept (encrypted) across restarts
        emulator_key = f"sk_test_demo{secrets.token_hex(16)}"
        await configs.set_stripe_config(project, Mode.TEST, secret_key=emulator_key)
    keys = ApiKeyService(session, secret_box)
    await keys.deactivate_named(project.id, DEMO_KEY_NAME)  # the previous demo key stops working
    created = await keys.create_key(project.id, Mode.TEST, DEMO_KEY_NAME, admin)
    end_user_secret, _ = await EndUserSecretService(session, secret_box).rotate(project)
    return DemoAccess(project, admin.email, admin_password, created.plaintext, end_user_secret)


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


async def _emulator_call(
    http: httpx.AsyncClient, method: str, path: str, form: dict[str, str] | None = None
) -> dict[str, Any]:
    answer = await http.request(method, path, data=form)
    if answer.is_error:
        raise fail(
            f"the Stripe emulator answered {method} {path} with {answer.status_code}: "
            f"{answer.text[:500]}"
        )
    body: dict[str, Any] = answer.json()
    return body


async def _demo_webhook_secret(
    api_base: str, secret_key: str, url: str, stored: Sequence[str]
) -> str:
    """The signing secret of the emulator endpoint delivering to `url`: the stored one while the
    endpoint made with it is there, else a new endpoint's. The account's other endpoints on the
    same route (an earlier address) are deleted, so each event is delivered once."""
    route = urlsplit(url).path
    by_fingerprint = {_fingerprint(secret): secret for secret in stored}
    kept: str | None = None
    headers = {"Authorization": f"Bearer {secret_key}"}
    async with httpx.AsyncClient(base_url=api_base, headers=headers, timeout=10) as http:
        listed = await _emulator_call(http, "GET", "/v1/webhook_endpoints?limit=100")
        for endpoint in listed["data"]:
            if urlsplit(endpoint["url"]).path != route:
                continue  # not the demo's: someone's own endpoint on the demo account
            secret = by_fingerprint.get(endpoint["metadata"].get(ENDPOINT_SECRET_FINGERPRINT, ""))
            if (
                kept is None
                and secret is not None
                and endpoint["url"] == url
                and endpoint["status"] == "enabled"
                and endpoint["enabled_events"] == ["*"]
            ):
                kept = secret
            else:
                await _emulator_call(http, "DELETE", f"/v1/webhook_endpoints/{endpoint['id']}")
        if kept is not None:
            return kept
        created = await _emulator_call(
            http,
            "POST",
            "/v1/webhook_endpoints",
            {"url": url, "enabled_events[0]": "*", "description": "billwarden demo"},
        )
        secret = str(created["secret"])
        await _emulator_call(
            http,
            "POST",
            f"/v1/webhook_endpoints/{created['id']}",
            {f"metadata[{ENDPOINT_SECRET_FINGERPRINT}]": _fingerprint(secret)},
        )
        return secret


async def _wire_demo_billing(
    session: AsyncSession,
    secret_box: SecretBox,
    settings: Settings,
    *,
    project_id: uuid.UUID,
    catalog: CatalogDocument,
) -> int:
    """The demo project sells `catalog` on the emulator and hears back from it: the catalog in
    force (a new version, and entitlements recomputed, only when it changed), its prices pushed
    (idempotent: a restart creates none) and an emulator webhook endpoint whose signing secret
    is the project's. Returns how many prices were created."""
    project = await ProjectService(session).get_project(project_id)
    catalogs = CatalogService(session)
    before = await catalogs.current(project.id)
    loaded = await catalogs.load(project.id, catalog, None)
    configs = StripeConfigService(session, secret_box)
    credentials = await configs.get_credentials(project.id, Mode.TEST)
    gateway = StripeGateway(
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )
    try:
        pricing = CatalogPricing(session, gateway, project.id, Mode.TEST, credentials.secret_key)
        pushed = await pricing.push()
    finally:
        await gateway.close()
    if before is None or before.version != loaded.version:
        # entitlements follow a new version, with its prices as just resolved
        await EntitlementService(session).recompute_project(project.id)
    secret = await _demo_webhook_secret(
        settings.stripe_api_base,
        credentials.secret_key,
        webhook_url(settings, project.id, Mode.TEST),
        credentials.webhook_secrets,
    )
    if credentials.webhook_secrets != (secret,):
        await configs.set_stripe_config(
            project, Mode.TEST, secret_key=None, webhook_secrets=[secret]
        )
    return len(pushed.created)


def _demo_end_user_token(project_id: uuid.UUID, end_user_secret: str) -> str:
    """What the tenant's backend signs for its user: the demo user, for DEMO_TOKEN_HOURS."""
    now = int(time.time())
    claims = {
        "sub": DEMO_END_USER,
        "email": DEMO_END_USER_EMAIL,
        "project_id": str(project_id),
        "mode": Mode.TEST.value,
        "iat": now,
        "exp": now + DEMO_TOKEN_HOURS * 3600,
    }
    return jwt.encode(claims, end_user_secret, algorithm="HS256")


def _demo_purchase_key(catalog: CatalogDocument) -> str | None:
    """The plan the printed checkout buys: the catalog's default, else its first self-serve."""
    if catalog.checkout.default_purchase_key is not None:
        return catalog.checkout.default_purchase_key
    return next((key for key, plan in catalog.plans.items() if plan.self_serve), None)


def _demo_buying(
    base: str, emulator_url: str, token: str, purchase_key: str | None, trigger_prefix: str
) -> str:
    """How to buy as an end user, and how to have the emulator send one event."""
    auth = f"-H 'Authorization: Bearer {token}'"
    trigger = (
        "  Or have the emulator send one event for the demo project (another shell, this "
        "directory):\n"
        f"     {trigger_prefix}BILLWARDEN_STRIPE_API_BASE={emulator_url} "
        f"billwarden trigger checkout.session.completed --project {DEMO_PROJECT_SLUG}\n"
    )
    if purchase_key is None:
        return f"\nThe catalog has no self-serve plan to buy.\n{trigger}"
    body = f'{{"purchaseKey": "{purchase_key}"}}'
    return (
        f"\nBuy {purchase_key} as your app's user {DEMO_END_USER} ({DEMO_END_USER_EMAIL}); "
        f"the token is valid {DEMO_TOKEN_HOURS} h:\n"
        f"  end-user token   {token}\n"
        '  1. Create a checkout session; its answer is {"sessionId", "url"}:\n'
        f"     curl -s -X POST {base}/api/v1/payments/stripe/checkout-session {auth} "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        "  2. Open that url, the emulator's checkout page "
        f"({emulator_url}/_emulator/checkout/cs_...), and press Pay\n"
        "     (it then sends you on to the catalog's success_url, a placeholder).\n"
        '  3. A moment later the webhook is applied and this shows "hasPremiumAccess": true:\n'
        f"     curl -s {base}/api/v1/entitlements/me {auth}\n"
        f"{trigger}"
    )


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    emulator_port: Annotated[int, typer.Option(help="Port for the Stripe emulator.")] = 12111,
    catalog: Annotated[
        Path, typer.Option(help="The demo project's catalog (TOML, or .json).")
    ] = DEMO_CATALOG,
) -> None:
    """Run billwarden offline: SQLite in the working directory, the built-in Stripe emulator,
    a demo project selling the sample catalog."""
    emulator_url = f"http://{host}:{emulator_port}"
    os.environ.setdefault("BILLWARDEN_ENVIRONMENT", "development")
    os.environ.setdefault("BILLWARDEN_PUBLIC_URL", f"http://{host}:{port}")
    os.environ["BILLWARDEN_STRIPE_API_BASE"] = emulator_url
    try:
        document = read_catalog_file(catalog)
    except InvalidCatalog as exc:
        raise fail(f"{exc.message} (choose the demo's catalog with --catalog FILE)") from exc
    settings = load_settings()
    # a key from the file: the printed `trigger` command, run from another shell, reads it too
    trigger_prefix = (
        f"BILLWARDEN_SECRET_KEY=$(cat {settings.secret_key_file}) "
        if settings.secret_key is None
        else ""
    )
    settings = _use_dev_secret_key(settings)
    revision = _run_migrations(settings)
    typer.echo(f"Database {settings.database_url} at migration {revision}.")
    # uvicorn re-raises the signal it stopped on: SIGTERM then ends through Python's exit, so
    # the emulator is stopped and its snapshot saved, as on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with _emulator_in_background(host, emulator_port, Path(".emulator-snapshot.json")):
        access = run_in_unit_of_work(settings, _prepare_demo)
        created = run_in_unit_of_work(
            settings, partial(_wire_demo_billing, project_id=access.project.id, catalog=document)
        )
        typer.echo(
            f"Catalog {catalog} in force for the demo project; {created} price(s) created on "
            "the emulator, and its webhook endpoint delivers to the demo project."
        )
        base = f"http://{host}:{port}"
        token = _demo_end_user_token(access.project.id, access.end_user_secret)
        typer.echo(
            "\nbillwarden demo is running. Open:\n"
            f"  console sign-in  {base}/login\n"
            f"  console pages    {base}/admin\n"
            f"  API docs         {base}/docs\n"
            f"  health           {base}/healthz, {base}/readyz, {base}/metrics\n"
            f"  Stripe emulator  {emulator_url} (helpers under /_emulator/)\n"
            f"\nDemo project {access.project.slug} ({access.project.id}), test mode on the "
            "emulator.\n"
            "Fresh demo credentials (a restart replaces them):\n"
            f"  admin            {access.admin_email} / {access.admin_password}\n"
            f"  API key          {access.api_key}\n"
            f"  end-user secret  {access.end_user_secret}\n"
            + _demo_buying(
                base,
                emulator_url,
                token,
                _demo_purchase_key(document),
                trigger_prefix,
            )
            + "\nStop with Ctrl-C.\n"
        )
        uvicorn.run(
            create_app(settings), host=host, port=port, log_config=None, server_header=False
        )


@cli.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 12111,
    snapshot: Annotated[
        Path | None, typer.Option(help="JSON file that keeps the state across restarts.")
    ] = None,
    webhook_retries: Annotated[
        str, typer.Option(help="Seconds between webhook delivery retries, comma-separated.")
    ] = "0.5,1,2,4,8",
    webhook_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for a webhook endpoint.")
    ] = 5.0,
) -> None:
    """Run the Stripe-compatible emulator alone."""
    from billwarden_emulator import EmulatorConfig
    from billwarden_emulator import serve as serve_emulator

    try:
        schedule = tuple(float(part) for part in webhook_retries.split(",") if part.strip())
    except ValueError as exc:
        raise fail("--webhook-retries takes seconds separated by commas, e.g. 0.5,1,2") from exc
    if any(delay < 0 for delay in schedule):
        raise fail("--webhook-retries takes non-negative seconds")
    typer.echo(f"Stripe emulator on http://{host}:{port} (point the SDK's api base here).")
    serve_emulator(
        host,
        port,
        EmulatorConfig(
            snapshot_path=snapshot,
            webhook_retry_schedule=schedule,
            webhook_timeout=webhook_timeout,
        ),
    )


STRIPE_API_HOST = "api.stripe.com"


def _require_emulator(api_base: str) -> None:
    """`trigger` drives the billwarden emulator only: against Stripe, `stripe trigger` does."""
    refusal = (
        f"BILLWARDEN_STRIPE_API_BASE is {api_base}, not a billwarden Stripe emulator: "
        "`billwarden trigger` only drives the emulator (`stripe trigger` does it on Stripe)"
    )
    if urlsplit(api_base).hostname == STRIPE_API_HOST:
        raise fail(refusal)
    try:
        answer = httpx.get(f"{api_base.rstrip('/')}/_emulator/health", timeout=5)
        body = answer.json() if answer.status_code == 200 else None
    except httpx.HTTPError as exc:
        raise fail(f"{refusal} (it cannot be reached: {exc})") from exc
    except ValueError:
        body = None
    if not (isinstance(body, dict) and body.get("ok") is True):
        raise fail(f"{refusal} (GET /_emulator/health answered {answer.status_code})")


@cli.command()
def trigger(
    event: Annotated[
        str,
        typer.Argument(
            help="checkout.session.completed, customer.subscription.updated, "
            "customer.subscription.deleted or invoice.payment_failed."
        ),
    ],
    project: Annotated[str, typer.Option("--project", help="Project id or slug.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode.")] = Mode.TEST,
    subject: Annotated[
        str, typer.Option(help="The user the checkout or subscription is for.")
    ] = "trigger-user",
) -> None:
    """Make the Stripe emulator emit an event for real, delivered signed to the project's
    webhook endpoints there, as `stripe trigger` does on Stripe."""
    from billwarden_emulator.triggers import TRIGGERS, TriggerFailed, run_trigger

    if event not in TRIGGERS:
        raise fail(f"cannot trigger {event!r}; supported events: {', '.join(TRIGGERS)}")
    if not 0 < len(subject) <= SUBJECT_ID_MAX_LENGTH:
        raise fail(f"--subject takes 1 to {SUBJECT_ID_MAX_LENGTH} characters")
    settings = load_settings()
    _require_emulator(settings.stripe_api_base)

    async def action(
        session: AsyncSession, secret_box: SecretBox, _: Settings
    ) -> tuple[Project, str]:
        found = await ProjectService(session).find_project(project)
        credentials = await StripeConfigService(session, secret_box).get_credentials(found.id, mode)
        return found, credentials.secret_key

    found, secret_key = run_in_unit_of_work(settings, action)
    # billwarden's own metadata, as on its checkouts: the objects map to the subject
    metadata = {
        META_PROJECT: str(found.id),
        META_MODE: mode.value,
        META_SUBJECT_TYPE: SubjectType.USER.value,
        META_SUBJECT_ID: subject,
    }
    try:
        result = run_trigger(settings.stripe_api_base, secret_key, event, metadata=metadata)
    except TriggerFailed as exc:
        raise fail(f"the trigger stopped: {exc}") from exc
    requests = "".join(f"    {request}\n" for request in result.requests)
    typer.echo(
        f"Triggered {result.event_type} for project {found.slug} ({mode.value} mode), "
        f"user {subject}:\n"
        f"  object    {result.object_id}\n"
        f"  requests\n{requests}"
        "The emulator delivers it, with the events around it, signed to the account's webhook "
        "endpoints."
    )


def re_encrypt_secrets() -> None:
    """Re-encrypt stored secrets under the current BILLWARDEN_SECRET_KEY (after rotating it)."""

    async def action(session: AsyncSession, secret_box: SecretBox, _: Settings) -> int:
        return await re_encrypt_stored_secrets(session, secret_box)

    count = run_in_unit_of_work(load_settings(), action)
    typer.echo(f"Re-encrypted {count} secret(s) under the current key.")


cli.command("re-encrypt-secrets")(re_encrypt_secrets)
# the command's first name: it re-encrypts, the key itself is rotated in the environment
cli.command("rotate-secrets", hidden=True)(re_encrypt_secrets)


def main() -> None:
    cli()
