"""/healthz (the process is up) and /readyz (the index is loaded, and which build it is)."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects, and some close over values known only when the router is made.

from fastapi import APIRouter

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.errors import documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import Health, Readiness


def readiness(runtime: Runtime) -> Readiness:
    service = runtime.service
    m = service.manifest
    model = m.get("model") or {}
    return Readiness(
        build_id=str(m.get("build_id")),
        built_at=str(m.get("built_at")),
        model=model.get("description") or model.get("id"),
        dimension=model.get("dimension"),
        dense_index=(m.get("dense_index") or {}).get("type"),
        dense_memory=service.dense_memory,
        article_count=int(m.get("article_count", 0)),
        passage_count=int(m.get("passage_count", 0)),
        mode="lexical" if service.notice else "hybrid",
        notice=service.notice,
        build_warnings=[str(w) for w in m.get("warnings", [])],
        loaded_at=runtime.loaded_at,
        reload_error=runtime.reload_error,
    )


def health_router(runtime: Runtime, guard: Guard) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """The process is up (no API key needed). Says nothing about the index: see /readyz."""
        return Health()

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses=documented(*guard.statuses, 503),
        dependencies=list(guard.dependencies),
    )
    async def readyz() -> Readiness:
        """200 with the served index's manifest once it is loaded; 503 with the reason until then."""
        runtime.require_ready()
        return readiness(runtime)

    return router
