"""Shared fixtures: every test that reaches a database runs once on SQLite and once on
PostgreSQL; a test that reaches none (the emulator's, pure functions) runs once.

Each run creates its own PostgreSQL database in the local server (dropped afterwards), builds the
schema with the Alembic migrations, and wraps every test in a transaction that is rolled back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.app import create_app
from billwarden.config import Environment, Settings
from billwarden.crypto import SecretBox
from billwarden.db import migrate
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.db.unit_of_work import finish, get_db_session, transaction
from billwarden.identity import passwords
from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.testing import running_emulator
from tests.catalog.factories import Catalogs
from tests.factories import Factories
from tests.identity.factories import People
from tests.projects.factories import Tenants

T = TypeVar("T")
BACKENDS = ("sqlite", "postgresql")
POSTGRES_ADMIN_DSN = os.environ.get(
    "BILLWARDEN_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_SECRET_KEY = "billwarden-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _create_postgres_database(prefix: str) -> str:
    """Create a uniquely named database; return its asyncpg SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PostgreSQL is required)", pytrace=False)
        pytest.skip(message)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"


async def _drop_postgres_database(url: str) -> None:
    name = url.rpartition("/")[2]
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def new_database_url(backend: str, directory: Path) -> str:
    """A fresh, empty database on `backend` (used by the run and by migration tests)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / f'billwarden-{uuid.uuid4().hex[:8]}.db'}"
    return await _create_postgres_database("billwarden_test")


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        await _drop_postgres_database(url)


def _uses_a_database(item: pytest.Item) -> bool:
    """Whether `item` reaches a database: through the run's database (`database_url`), or by
    asking for `backend` itself (the test, or any fixture it uses, makes its own database or
    serves an app on this pass's backend)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True
    if "database_url" in info.names_closure or "backend" in info.argnames:
        return True
    return any(
        "backend" in definition.argnames
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reaches no database runs once, on the first pass: the second pass could not
    tell it anything new (the emulator's tests, pure functions). A test marked `postgresql_only`
    runs in the PostgreSQL pass alone."""
    kept: list[pytest.Item] = []
    once: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on = callspec.params.get("backend") if callspec is not None else None
        if (on == BACKENDS[1] and not _uses_a_database(item)) or (
            on == "sqlite" and item.get_closest_marker("postgresql_only") is not None
        ):
            once.append(item)
        else:
            kept.append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS, autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend this pass of the suite runs on."""
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url = await new_database_url(backend, tmp_path_factory.mktemp(backend))
    try:
        yield url
    finally:
        await drop_database(url)


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose schema the migrations have built, disposed afterwards."""
    db_engine = create_engine(url)
    try:
        await migrate.upgrade(db_engine)
        yield db_engine
    finally:
        await db_engine.dispose()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as db_engine:
        yield db_engine


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test.

    Commits made by the code under test release a savepoint, so nothing reaches the database.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        db_session = AsyncSession(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        )
        try:
            yield db_session
        finally:
            await db_session.close()
            await transaction.rollback()


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The Stripe emulator on a free local port, shared by the whole run."""
    with running_emulator(EmulatorConfig(webhook_retry_schedule=(0.05, 0.1, 0.2))) as url:
        yield url


@pytest.fixture
def settings(database_url: str, emulator_url: str) -> Settings:
    return Settings(
        environment=Environment.DEVELOPMENT,
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET_KEY),
        public_url="https://billing.example.test",
        stripe_api_base=emulator_url,
        stripe_max_network_retries=0,
    )


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox(TEST_SECRET_KEY)


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id with test-sized cost: the same code path, a fraction of the time."""
    previous = passwords.use_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    passwords.use_password_hasher(previous)


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine, session: AsyncSession) -> Iterator[FastAPI]:
    """The app on the test's session. Each request commits or rolls back its own SAVEPOINT, as
    production commits or rolls back its transaction, so a refused request cannot undo what the
    test set up before it, and nothing reaches the database after the test."""
    application = create_app(settings, engine=engine, configure_logs=False)

    async def request_session() -> AsyncIterator[AsyncSession]:
        nested = await session.begin_nested()
        try:
            yield session
        except BaseException as exc:
            await finish(nested, exc)  # as the unit of work ends a transaction
            raise
        await finish(nested, None)

    application.dependency_overrides[get_db_session] = request_session
    yield application
    application.dependency_overrides.clear()


@pytest.fixture
async def scratch_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of its own on this pass's backend, dropped afterwards:
    for work that must really commit (concurrency, commands run as processes, migrations)."""
    url = await new_database_url(backend, tmp_path)
    try:
        yield url
    finally:
        await drop_database(url)


@dataclass
class Scratch:
    """A migrated scratch database, the real app serving it (production sessions, no overrides)
    and a client of that app."""

    engine: AsyncEngine
    settings: Settings
    secret_box: SecretBox
    app: FastAPI
    client: httpx.AsyncClient

    def session(self) -> AsyncSession:
        return create_sessionmaker(self.engine)()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a writer's transaction, committed at the end: on SQLite it takes the
        write lock first, so a served app writing meanwhile makes it wait, not fail."""
        async with self.session() as session, transaction(session, write=True):
            yield session

    async def setup(self, build: Callable[[Factories], Awaitable[T]]) -> T:
        """Run `build` with every domain's factories on a session of this database, then
        commit."""
        async with self.session() as session, transaction(session, write=True):
            # a writer, as in production: on SQLite it takes the write lock before reading, so
            # a served app's worker writing meanwhile makes it wait, not fail as "locked"
            return await build(Factories.on(session, self.secret_box, self.settings))


@pytest.fixture
async def scratch_engine(scratch_database: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated scratch database: transactions there really commit and wait."""
    async with migrated_engine(scratch_database) as db_engine:
        yield db_engine


@pytest.fixture
async def scratch(
    scratch_engine: AsyncEngine, scratch_database: str, settings: Settings, secret_box: SecretBox
) -> AsyncIterator[Scratch]:
    scratch_settings = settings.model_copy(update={"database_url": scratch_database})
    app = create_app(scratch_settings, engine=scratch_engine, configure_logs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Scratch(scratch_engine, scratch_settings, secret_box, app, client)


@pytest.fixture
def cli_env(scratch_database: str) -> dict[str, str]:
    """Environment for running `billwarden` as a separate process on a database of its own."""
    return {"BILLWARDEN_DATABASE_URL": scratch_database, "BILLWARDEN_SECRET_KEY": TEST_SECRET_KEY}


@pytest.fixture
def catalogs(session: AsyncSession) -> Catalogs:
    return Catalogs(session)


@pytest.fixture
def people(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> People:
    return People(session, secret_box, settings)


@pytest.fixture
def tenants(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> Tenants:
    return Tenants(session, secret_box, settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
