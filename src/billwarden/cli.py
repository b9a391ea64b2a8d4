"""The `billwarden` command."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden import __version__, domains
from billwarden.app import build_inbox_worker, create_app
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db import migrate as migrations
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.identity.exceptions import UserNotFound
from billwarden.identity.service import ApiKeyService, IdentityPolicy, UserService
from billwarden.kit.cli import fail, load_settings, run_in_unit_of_work
from billwarden.kit.state import build_secret_box
from billwarden.projects.key_rotation import re_encrypt_stored_secrets
from billwarden.projects.models import Project
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectService
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.stripe_gateway import StripeGateway

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
    """Apply stored Stripe events (the webhook inbox) until stopped; run as many as you like
    against one PostgreSQL."""
    settings = load_settings()
    engine = engine_from_settings(settings)

    async def run() -> None:
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        inbox = build_inbox_worker(
            create_sessionmaker(engine), settings, gateway, build_secret_box(settings)
        )
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, inbox.stopping.set)
        typer.echo("Applying stored Stripe events; stop with Ctrl-C.")
        try:
            await inbox.run_forever()
        finally:
            await gateway.close()
            await engine.dispose()

    asyncio.run(run())


DEMO_PROJECT_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.billwarden.test"
DEMO_KEY_NAME = "demo key"


def _start_emulator_thread(host: str, port: int, snapshot: Path) -> uvicorn.Server:
    """Serve the emulator from a background thread of this process."""
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
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise fail(f"the Stripe emulator could not start on {host}:{port}")
        time.sleep(0.02)
    return server


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


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    emulator_port: Annotated[int, typer.Option(help="Port for the Stripe emulator.")] = 12111,
) -> None:
    """Run billwarden offline: SQLite in the working directory, the built-in Stripe emulator."""
    emulator_url = f"http://{host}:{emulator_port}"
    os.environ.setdefault("BILLWARDEN_ENVIRONMENT", "development")
    os.environ.setdefault("BILLWARDEN_PUBLIC_URL", f"http://{host}:{port}")
    os.environ["BILLWARDEN_STRIPE_API_BASE"] = emulator_url
    settings = _use_dev_secret_key(load_settings())
    revision = _run_migrations(settings)
    typer.echo(f"Database {settings.database_url} at migration {revision}.")
    _start_emulator_thread(host, emulator_port, Path(".emulator-snapshot.json"))
    access = run_in_unit_of_work(settings, _prepare_demo)
    base = f"http://{host}:{port}"
    typer.echo(
        "\nbillwarden demo is running. Open:\n"
        f"  console sign-in  {base}/login\n"
        f"  API docs         {base}/docs\n"
        f"  health           {base}/healthz, {base}/readyz, {base}/metrics\n"
        f"  Stripe emulator  {emulator_url} (helpers under /_emulator/)\n"
        f"\nDemo project {access.project.slug} ({access.project.id}), test mode on the emulator.\n"
        "Fresh demo credentials (a restart replaces them):\n"
        f"  admin            {access.admin_email} / {access.admin_password}\n"
        f"  API key          {access.api_key}\n"
        f"  end-user secret  {access.end_user_secret}\n"
        "Stop with Ctrl-C.\n"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, server_header=False)


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
