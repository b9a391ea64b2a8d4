"""Test-only routes that answer who the caller is, for principals no real route takes yet:
`/probe/project-key` (a project API key) and `/probe/end-user` (an end-user JWT)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from billwarden.auth import EndUser, ProjectKey

PROJECT_KEY_PROBE = "/probe/project-key"
END_USER_PROBE = "/probe/end-user"


def probe_router() -> APIRouter:
    router = APIRouter()

    @router.get(PROJECT_KEY_PROBE)
    async def project_key_probe(key: ProjectKey) -> dict[str, Any]:
        return {"projectId": str(key.project_id), "mode": key.mode.value, "keyId": str(key.key_id)}

    @router.get(END_USER_PROBE)
    async def end_user_probe(user: EndUser) -> dict[str, Any]:
        return {
            "projectId": str(user.project_id),
            "mode": user.mode.value,
            "sub": user.sub,
            "email": user.email,
            "subject": user.subject,
        }

    return router


def install_probes(app: FastAPI) -> FastAPI:
    app.include_router(probe_router())
    return app
