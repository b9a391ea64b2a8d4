"""The docs stay true to the code: every setting, CLI command, handled event type, checkout error
code, entitlement status and reason, and domain route is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import typer.main
from fastapi.routing import APIRoute

from billwarden import domains
from billwarden.checkout import exceptions as checkout_errors
from billwarden.cli import cli
from billwarden.config import Settings
from billwarden.entitlements.service import STATUSES
from billwarden.errors import BillwardenError
from billwarden.notifications import exceptions as notification_errors
from billwarden.notifications import models as notification_models
from billwarden.subscriptions import exceptions as subscription_errors

ROOT = Path(__file__).parents[1]


def _env_names(name: str) -> set[str]:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if alias is not None:
        choices = getattr(alias, "choices", [alias])
        return {str(choice) for choice in choices}
    return {f"BILLWARDEN_{name.upper()}"}


class TestConfigurationDoc:
    def test_every_setting_is_documented(self) -> None:
        doc = (ROOT / "docs" / "configuration.md").read_text()
        missing = []
        for name in Settings.model_fields:
            names = _env_names(name)
            if not any(f"`{env}`" in doc for env in names):
                missing.append(sorted(names))
        assert not missing, f"settings missing from docs/configuration.md: {missing}"


class TestReadme:
    def test_names_every_command(self) -> None:
        readme = (ROOT / "README.md").read_text()
        group = typer.main.get_command(cli)
        commands = set(group.commands)  # type: ignore[attr-defined]
        missing = sorted(command for command in commands if command not in readme)
        assert not missing, f"commands missing from README.md: {missing}"

    def test_links_the_docs(self) -> None:
        readme = (ROOT / "README.md").read_text()
        for doc in sorted((ROOT / "docs").glob("**/*.md")):
            name = doc.relative_to(ROOT / "docs").as_posix()
            assert f"docs/{name}" in readme, f"README.md does not link docs/{name}"


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def _routes(module: str) -> set[str]:
    found = domains.domain_module(module, "endpoints")
    assert found is not None
    return {
        route.path
        for router in found.routers
        for route in router.routes
        if isinstance(route, APIRoute)
    }


class TestLoopDocs:
    def test_webhooks_doc_names_every_handled_event_type(self) -> None:
        doc = _doc("webhooks.md")
        missing = sorted(name for name in domains.event_handlers() if f"`{name}`" not in doc)
        assert not missing, f"handled event types missing from docs/webhooks.md: {missing}"

    def test_checkout_doc_names_every_error_code_and_route(self) -> None:
        doc = _doc("checkout.md")
        codes = {
            error.code
            for _, error in inspect.getmembers(checkout_errors, inspect.isclass)
            if issubclass(error, BillwardenError) and error.__module__ == checkout_errors.__name__
        }
        missing = sorted(code for code in codes if f"`{code}`" not in doc)
        assert not missing, f"checkout codes missing from docs/checkout.md: {missing}"
        routes = sorted(path for path in _routes("checkout") if path not in doc)
        assert not routes, f"checkout routes missing from docs/checkout.md: {routes}"

    def test_entitlements_doc_names_every_status_reason_and_route(self) -> None:
        doc = _doc("entitlements.md")
        missing = sorted(status for status in STATUSES if f"`{status}`" not in doc)
        assert not missing, f"statuses missing from docs/entitlements.md: {missing}"
        source = (ROOT / "src/billwarden/entitlements/service/__init__.py").read_text()
        reasons = set(re.findall(r'"(granted|no_subscription|feature_not_in_plan)"', source))
        assert reasons == {"granted", "no_subscription", "feature_not_in_plan"}
        assert all(f"`{reason}`" in doc for reason in [*reasons, "status_<status>"])
        routes = sorted(
            path
            for path in _routes("entitlements")
            if path.replace("{subject_type}", "{subjectType}").replace(
                "{subject_id}", "{subjectId}"
            )
            not in doc
        )
        assert not routes, f"entitlement routes missing from docs/entitlements.md: {routes}"

    def test_self_service_doc_names_every_error_code_and_route(self) -> None:
        doc = _doc("self-service.md")
        codes = {
            error.code
            for _, error in inspect.getmembers(subscription_errors, inspect.isclass)
            if issubclass(error, BillwardenError)
            and error.__module__ == subscription_errors.__name__
        }
        missing = sorted(code for code in codes if f"`{code}`" not in doc)
        assert not missing, f"self-service codes missing from docs/self-service.md: {missing}"
        routes = sorted(path for path in _routes("subscriptions") if path not in doc)
        assert not routes, f"self-service routes missing from docs/self-service.md: {routes}"

    def test_notifications_doc_names_every_event_type_error_code_and_route(self) -> None:
        doc = _doc("notifications.md")
        types = sorted(name for name in notification_models.EVENT_TYPES if f"`{name}`" not in doc)
        assert not types, f"event types missing from docs/notifications.md: {types}"
        codes = {
            error.code
            for _, error in inspect.getmembers(notification_errors, inspect.isclass)
            if issubclass(error, BillwardenError)
            and error.__module__ == notification_errors.__name__
        }
        missing = sorted(code for code in codes if f"`{code}`" not in doc)
        assert not missing, f"notification codes missing from docs/notifications.md: {missing}"
        routes = sorted(path for path in _routes("notifications") if path not in doc)
        assert not routes, f"notification routes missing from docs/notifications.md: {routes}"
