"""The application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billwarden import __version__, domains
from billwarden.catalog.service import bootstrap_catalog
from billwarden.config import Settings, get_settings
from billwarden.core.head_requests import HeadAsGet
from billwarden.core.logging import configure_logging
from billwarden.core.metrics import InFlight, MetricsMiddleware
from billwarden.core.openapi import install_docs, install_openapi
from billwarden.core.request_guard import RequestGuard
from billwarden.core.request_id import RequestIdMiddleware
from billwarden.core.security_headers import SecurityHeadersMiddleware
from billwarden.crypto import SecretBox
from billwarden.db.changes import ChangeWatch, GenerationCache
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.endpoints import CachedEntitlementReads
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import install_error_handlers
from billwarden.kit.operations import Figures, Operations
from billwarden.kit.state import build_secret_box
from billwarden.kit.workers import Worker, stop_all
from billwarden.notifications.repository import DeliveryRepository
from billwarden.notifications.service import DeliveryPolicy
from billwarden.notifications.tasks import NotificationWorker
from billwarden.projects.single_tenant import bootstrap_single_tenant
from billwarden.reconciliation.repository import RunRepository
from billwarden.reconciliation.service import RunPolicy, Runs
from billwarden.reconciliation.tasks import ReconcileWorker
from billwarden.routers import api_routers
from billwarden.stripe_gateway import StripeGateway
from billwarden.usage.repository import ForwardRepository
from billwarden.usage.tasks import ForwardPolicy, MeterForwarder
from billwarden.webhooks.endpoints import StripeIntake, wake_inbox_worker
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service import InboxPolicy, StripeAccess
from billwarden.webhooks.service.registry import HandlerRegistry
from billwarden.webhooks.tasks import InboxWorker

WORKER_STOP_SECONDS = 20.0
logger = logging.getLogger("billwarden")


def build_inbox_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateway: StripeGateway,
    secret_box: SecretBox,
    *,
    busy: Callable[[], bool] | None = None,
) -> InboxWorker:
    """The webhook inbox's worker, with every domain's event handlers; `busy` (embedded in
    `serve`): whether requests are in flight, which the worker gives way to."""
    return InboxWorker(
        sessionmaker,
        HandlerRegistry(domains.event_handlers()),
        InboxPolicy.from_settings(settings),
        StripeAccess(gateway, secret_box),
        poll_seconds=settings.worker_poll_seconds,
        busy=busy,
    )


def build_notification_worker(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, secret_box: SecretBox
) -> NotificationWorker:
    """The worker that sends the outbox's notifications to the tenant apps' endpoints."""
    return NotificationWorker(
        sessionmaker,
        secret_box,
        DeliveryPolicy.from_settings(settings),
        poll_seconds=settings.worker_poll_seconds,
    )


def build_reconcile_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateway: StripeGateway,
    secret_box: SecretBox,
) -> ReconcileWorker:
    """The worker that runs queued reconciliation runs and the scheduled ones."""
    runs = Runs(sessionmaker, gateway, secret_box, RunPolicy.from_settings(settings))
    return ReconcileWorker(sessionmaker, runs, poll_seconds=max(settings.worker_poll_seconds, 5.0))


def build_meter_forwarder(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateway: StripeGateway,
    secret_box: SecretBox,
) -> MeterForwarder:
    """The worker that sends usage events of metered metrics to Stripe's meters."""
    return MeterForwarder(
        sessionmaker,
        gateway,
        secret_box,
        ForwardPolicy.from_settings(settings),
        poll_seconds=settings.worker_poll_seconds,
    )


def build_workers(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateway: StripeGateway,
    secret_box: SecretBox,
    *,
    busy: Callable[[], bool] | None = None,
) -> dict[str, Worker]:
    """Every background worker, by the app-state name its routes wake it through: the one list
    `serve` (embedded) and `billwarden worker` run."""
    return {
        "inbox_worker": build_inbox_worker(sessionmaker, settings, gateway, secret_box, busy=busy),
        "notification_worker": build_notification_worker(sessionmaker, settings, secret_box),
        "reconcile_worker": build_reconcile_worker(sessionmaker, settings, gateway, secret_box),
        "meter_forwarder": build_meter_forwarder(sessionmaker, settings, gateway, secret_box),
    }


async def read_operations(session: AsyncSession, now: datetime) -> Figures:
    """What `/metrics` and `/readyz` report of the workers' queues and the last reconciliations
    (docs/deployment.md): the queues of the workers `build_workers` lists, but the
    reconciliation's, whose runs queue behind each other by design."""
    return Figures(
        read_at=now,
        queues={
            "inbox": await WebhookEventRepository(session).backlog(now),
            "notifications": await DeliveryRepository(session).backlog(now),
            "meter_forwards": await ForwardRepository(session).backlog(now),
        },
        reconcile=await RunRepository(session).latest_finished_figures(),
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the ASGI app. `engine` lets tests share one engine across apps."""
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(settings.log_level, settings.effective_log_format)
    secret_box = build_secret_box(settings)
    owns_engine = engine is None
    db_engine = engine if engine is not None else engine_from_settings(settings)

    stripe_gateway = StripeGateway(
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )

    change_watch = ChangeWatch(db_engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.read_cache:
            await change_watch.start()
        await bootstrap_single_tenant(app.state.sessionmaker, secret_box, settings)
        changed = await bootstrap_catalog(app.state.sessionmaker, settings)
        if changed is not None:
            async with unit_of_work(app.state.sessionmaker) as session:
                await EntitlementService(session).recompute_project(changed)
        workers: dict[str, Worker] = {}
        if settings.embedded_worker:
            workers = build_workers(
                app.state.sessionmaker,
                settings,
                stripe_gateway,
                secret_box,
                busy=lambda: in_flight.count > 0,
            )
            for attribute, worker in workers.items():
                setattr(app.state, attribute, worker)  # what the routes wake
        tasks = [
            asyncio.create_task(worker.run_forever(), name=f"billwarden {attribute}")
            for attribute, worker in workers.items()
        ]
        try:
            yield
        finally:
            # an event, delivery or run under way finishes; claims not started are given back
            await stop_all(workers, tasks, WORKER_STOP_SECONDS)
            await stripe_gateway.close()
            await change_watch.stop()
            if owns_engine:
                await db_engine.dispose()

    app = FastAPI(
        title="billwarden",
        version=__version__,
        summary="A self-hosted billing control plane for Stripe.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        openapi_tags=domains.openapi_tags(),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = db_engine
    app.state.sessionmaker = create_sessionmaker(db_engine)
    app.state.secret_box = secret_box
    app.state.operations = Operations(app.state.sessionmaker, read_operations)
    app.state.stripe_gateway = stripe_gateway
    # empty and never trusted until the lifespan starts the watch (BILLWARDEN_READ_CACHE)
    app.state.read_cache = GenerationCache(change_watch)
    # built now so a handler registered for an unknown event type stops the start, worker or not
    app.state.event_handlers = HandlerRegistry(domains.event_handlers())

    # innermost: cached entitlement reads and Stripe's deliveries skip routing, every other
    # layer still applies
    app.add_middleware(
        StripeIntake,
        cache=app.state.read_cache,
        sessionmaker=app.state.sessionmaker,
        stored=lambda: wake_inbox_worker(app),
    )
    app.add_middleware(CachedEntitlementReads, cache=app.state.read_cache, secret_box=secret_box)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        raw_body_prefixes=domains.raw_body_prefixes(),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    in_flight = app.state.in_flight = InFlight.counter()
    app.add_middleware(InFlight, tally=in_flight)
    # inside metrics (labelled HEAD), outside every layer that reads the method: HEAD is GET there
    app.add_middleware(HeadAsGet)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    routers = api_routers()
    _tag_surfaces(routers)
    for router in routers:
        app.include_router(router)
    install_openapi(app)
    install_docs(app)
    return app


def _tag_surfaces(routers: list[APIRouter]) -> None:
    """Give the routes another domain's surface includes (a seed's) that surface's tags too."""
    extra = domains.also_tagged()
    tagged = set()
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            tags = extra.get((method, route.path))
            if tags:
                route.tags = [*route.tags, *(tag for tag in tags if tag not in route.tags)]
                tagged.add((method, route.path))
    missing = set(extra) - tagged
    if missing:  # a renamed route would silently leave a seed's surface
        raise RuntimeError(f"routes named for another surface do not exist: {sorted(missing)}")


def create_app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory` worker processes."""
    return create_app()
