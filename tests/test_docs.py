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
from billwarden.routers import api_routers
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


DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
DEPLOY_FILES = sorted(path for path in (ROOT / "deploy").rglob("*") if path.is_file())
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_COMMAND_NAME = re.compile(r"[a-z][a-z-]*")


def _deployment_code() -> list[str]:
    """The lines an operator copies: the deployment doc's code (spans and blocks), and in the
    files in deploy/ every line but the prose of comments (their code spans and indented
    examples count)."""
    doc = DEPLOYMENT_DOC.read_text()
    lines = list(_CODE_SPAN.findall(doc))
    lines += [line for block in _FENCE.findall(doc) for line in block.splitlines()]
    for path in DEPLOY_FILES:
        for line in path.read_text().splitlines():
            if not line.startswith("#") or line.startswith("#   "):
                lines.append(line)
            else:
                lines += _CODE_SPAN.findall(line)
    return lines


def _invocations(line: str) -> list[list[str]]:
    """Each `billwarden <command> ...` in a line: its words up to the end of the command (a
    comment, a pipe, a closing backtick); a Containerfile's JSON form counts too."""
    for mark in '`",[]()':
        line = line.replace(mark, f" {mark} " if mark == "`" else " ")
    words = line.split()
    found = []
    for position, word in enumerate(words):
        if word not in {"billwarden", "/opt/billwarden/bin/billwarden"}:
            continue
        rest = words[position + 1 :]
        if not rest or not _COMMAND_NAME.fullmatch(rest[0]):
            continue  # the user or group named billwarden, not the command
        end = next(
            (index for index, each in enumerate(rest) if each in {"#", "`", "|", "&&", ";"}),
            len(rest),
        )
        found.append(rest[:end])
    return found


def _resolve(words: list[str]) -> tuple[str, set[str]]:
    """The command the words name (`events catch-up`), and its options; fails on an unknown
    command."""
    command: object = typer.main.get_command(cli)
    name: list[str] = []
    while words and hasattr(command, "commands") and _COMMAND_NAME.fullmatch(words[0]):
        sub = command.commands.get(words[0])
        assert sub is not None, f"no command `billwarden {' '.join([*name, words[0]])}`"
        name.append(words.pop(0))
        command = sub
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}  # type: ignore[attr-defined]
    return " ".join(name), options


class TestDeploymentDoc:
    def test_names_only_real_settings(self) -> None:
        known = {env for name in Settings.model_fields for env in _env_names(name)}
        texts = [DEPLOYMENT_DOC.read_text(), *(path.read_text() for path in DEPLOY_FILES)]
        named = {name for text in texts for name in re.findall(r"BILLWARDEN_[A-Z0-9_]+", text)}
        assert "BILLWARDEN_WORKER_STALL_SECONDS" in named
        unknown = sorted(named - known)
        assert not unknown, f"settings that do not exist, named in deployment files: {unknown}"

    def test_commands_and_their_options_exist(self) -> None:
        seen = set()
        for line in _deployment_code():
            for words in _invocations(line):
                command, options = _resolve(list(words))
                seen.add(command)
                unknown = [
                    word.split("=")[0]
                    for word in words
                    if word.startswith("--") and word.split("=")[0] not in options
                ]
                assert not unknown, f"`billwarden {command}` has no option {unknown}: {line!r}"
        assert {"serve", "worker", "migrate", "re-encrypt-secrets"} <= seen

    def test_options_named_alone_exist(self) -> None:
        group = typer.main.get_command(cli)
        every: set[str] = set()
        pending = [group]
        while pending:
            command = pending.pop()
            pending.extend(getattr(command, "commands", {}).values())
            every |= {
                opt for param in command.params for opt in (*param.opts, *param.secondary_opts)
            }
        spans = _CODE_SPAN.findall(DEPLOYMENT_DOC.read_text())
        named = {span.split()[0] for span in spans if span.startswith("--")}
        assert named, "the deployment doc names no option"
        assert not named - every, f"options no command has: {sorted(named - every)}"

    def test_routes_named_exist(self) -> None:
        paths = {
            getattr(route, "path", None) for router in api_routers() for route in router.routes
        }
        named = {
            match.group(1)
            for span in _CODE_SPAN.findall(DEPLOYMENT_DOC.read_text())
            if (match := re.fullmatch(r"(?:GET |POST )?(/[\w{}/.-]*)", span))
        }
        assert {"/healthz", "/readyz", "/metrics"} <= named
        assert not named - paths, f"routes that do not exist: {sorted(named - paths)}"

    def test_container_runs_serve_as_a_user_with_a_liveness_check(self) -> None:
        lines = (ROOT / "deploy" / "Containerfile").read_text().splitlines()
        final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
        assert lines[0].startswith("#") and "FROM python:3.11-slim" in final[0]
        users = [line.split()[1] for line in final if line.startswith("USER ")]
        assert users and users[-1] not in {"root", "0"}
        assert any(line.startswith("HEALTHCHECK") for line in final)
        start = next(i for i, line in enumerate(final) if line.startswith("HEALTHCHECK"))
        healthcheck = "\n".join(final[start : start + 2])  # the instruction and its command
        assert "/healthz" in healthcheck
        cmd = next(line for line in final if line.startswith("CMD "))
        assert _invocations(cmd)[0][0] == "serve"
